//! An error's causes. Client libraries (reqwest, hyper, kube) keep the useful part ("Connection
//! refused", "invalid peer certificate: UnknownIssuer") several `source()`s down, and repeat
//! their own layers ("client error (Connect)"): reports flatten the chain to one line, and
//! classification looks at the causes' types, never at their text.
use std::error::Error;

/// The error, then each cause, outermost first. Unlike `source()` alone this also steps into
/// an `io::Error`'s wrapped error: `io::Error::source()` skips it (it returns the wrapped
/// error's own source), and TLS libraries report through exactly such io::Errors.
pub fn causes<'a>(
    err: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&err: &&'a (dyn Error + 'static)| {
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => err.source(),
        }
    })
}

/// The first cause of type `T`.
pub fn find<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a T> {
    causes(err).find_map(|cause| cause.downcast_ref::<T>())
}

/// The error and its causes on one line, `a: b: c`, each text once: a cause whose text the
/// line already holds (a layer that repeats what it wraps) adds nothing.
pub fn flatten(err: &(dyn Error + 'static)) -> String {
    let mut message = String::new();
    for cause in causes(err) {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<dyn Error + Send + Sync>>,
    }

    fn layer(text: &'static str, source: impl Error + Send + Sync + 'static) -> Layer {
        Layer {
            text,
            source: Some(Box::new(source)),
        }
    }

    #[test]
    fn repeated_layers_are_said_once() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = layer(
            "error sending request",
            layer(
                "client error (Connect)",
                layer("client error (Connect)", refused),
            ),
        );
        assert_eq!(
            flatten(&err),
            "error sending request: client error (Connect): connection refused"
        );
    }

    #[test]
    fn the_error_inside_an_io_error_is_a_cause() {
        let inner = layer("the wrapped one", std::fmt::Error);
        let err = layer("outer", std::io::Error::other(inner));
        let texts: Vec<String> = causes(&err).map(ToString::to_string).collect();
        // io::Error displays as what it wraps; then the wrapped error, then its source.
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert!(find::<std::fmt::Error>(&err).is_some());
        assert!(find::<Layer>(&err).is_some());
        assert_eq!(
            flatten(&err),
            "outer: the wrapped one: an error occurred when formatting an argument"
        );
    }
}
