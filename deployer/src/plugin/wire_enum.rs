//! Istio's enum fields as open enums: the known values typed, any other kept as `Unknown`.
//! A newer Istio may add a value (as FAIL_RELOAD was added); reading such an object from a
//! cluster must not fail `list`, `logs` or `status`, while a user's file with an unknown value
//! is refused (`spec::read_spec` reports `Unknown` values at that boundary).

/// The wire spellings of an open enum, for messages and for reading.
pub trait WireEnum: Sized {
    /// Every known value as Istio spells it.
    const KNOWN: &'static [&'static str];
    fn as_str(&self) -> &str;
    /// The value a newer Istio may have added, when this is one.
    fn unknown(&self) -> Option<&str>;
}

/// Declares an open enum: each `Variant = "WIRE"` is a known value (with its clap attributes
/// for the CLI spelling); `Unknown(String)` holds any other string and is hidden from clap.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, clap::ValueEnum)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A value this tool does not know (written by a newer Istio).
            #[value(skip)]
            Unknown(String),
        }

        impl $crate::plugin::wire_enum::WireEnum for $name {
            const KNOWN: &'static [&'static str] = &[$($wire),+];

            fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(other) => other,
                }
            }

            fn unknown(&self) -> Option<&str> {
                match self {
                    $name::Unknown(other) => Some(other),
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($crate::plugin::wire_enum::WireEnum::as_str(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(match text.as_str() {
                    $( $wire => $name::$variant, )+
                    _ => $name::Unknown(text),
                })
            }
        }
    };
}

pub(crate) use wire_enum;
