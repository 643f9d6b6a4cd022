//! `deployer history NAME`: the spec revisions `apply` recorded on a plugin, newest last —
//! what `rollback NAME REVISION` can restore.
use std::process::ExitCode;

use deployer::cluster::wasmplugin::history_of;
use deployer::output::{self, Format};
use serde::Serialize;

use super::args::{PluginArgs, one_context};

#[derive(Debug, clap::Args)]
#[command(mut_arg("contexts", one_context), after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Output format: text, json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

const EXAMPLES: &str = "Examples:
  deployer history context-logger -n demo
  deployer history context-logger -n demo -o json
  deployer rollback context-logger 2 -n demo      # restore revision 2";

#[derive(Debug, Serialize)]
struct Row {
    revision: u64,
    /// RFC 3339, when the revision was first applied.
    applied_at: String,
    /// The url without its digest.
    image: String,
    /// `sha256:<hex>`, from the url or the sha256 field, when pinned.
    digest: Option<String>,
    url: String,
    current: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cluster = args.plugin.cluster.connect_one().await?;
    let (kind, live) = args.plugin.live(&cluster, "").await?;
    let history = history_of(&live)?;
    let current = history.latest().map(|revision| revision.revision);
    let rows: Vec<Row> = history
        .revisions
        .iter()
        .map(|revision| {
            let url = revision.spec.url.clone();
            let (image, digest) = match url.split_once('@') {
                Some((image, digest)) => (image.to_string(), Some(digest.to_string())),
                None => (url.clone(), None),
            };
            let digest = digest.or_else(|| {
                revision
                    .spec
                    .sha256
                    .as_deref()
                    .filter(|hex| !hex.is_empty())
                    .map(|hex| format!("sha256:{hex}"))
            });
            Row {
                revision: revision.revision,
                applied_at: revision.applied_at.clone(),
                image,
                digest,
                url,
                current: Some(revision.revision) == current,
            }
        })
        .collect();
    if rows.is_empty() && args.output == Format::Text {
        eprintln!(
            "{}/{} has no recorded revisions (it was not applied by deployer apply)",
            kind.singular_resource(),
            args.plugin.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    output::print(args.output, &rows, || table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[Row]) -> String {
    let width = |header: &str, cell: fn(&Row) -> &str| {
        rows.iter()
            .map(|row| cell(row).len())
            .chain([header.len()])
            .max()
            .unwrap_or_default()
    };
    let image_width = width("IMAGE", |row| &row.image);
    let applied_width = width("APPLIED", |row| &row.applied_at);
    let mut out = format!(
        "{:<8}  {:<applied_width$}  {:<image_width$}  DIGEST\n",
        "REVISION", "APPLIED", "IMAGE"
    );
    for row in rows {
        let digest = row.digest.as_deref().map_or("-".to_string(), |digest| {
            // As list shows it: enough to tell revisions apart; -o json has it whole.
            digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        });
        let current = if row.current { "  (current)" } else { "" };
        out.push_str(&format!(
            "{:<8}  {:<applied_width$}  {:<image_width$}  {digest}{current}\n",
            row.revision, row.applied_at, row.image
        ));
    }
    out
}
