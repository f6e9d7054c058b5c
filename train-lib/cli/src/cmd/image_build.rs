//! `train image build`: a train image on a master, by the image library's build rules.

use crate::cli::{BuildArgs, Cli};
use crate::support::{load_key, runtime};
use anyhow::Result;
use train_image::{self as image, BuildRequest, ImageRef};

/// Builds and pushes the train image of `a.dir`.
pub fn run(a: &BuildArgs, cli: &Cli) -> Result<()> {
    let master: ImageRef = a.master.parse()?;
    let tag: ImageRef = a.tag.parse()?;
    let creator_key = a
        .creator_key
        .as_ref()
        .map(|p| load_key(p, cli))
        .transpose()?;
    let builder_key = a
        .builder_key
        .as_ref()
        .map(|p| load_key(p, cli))
        .transpose()?;
    let req = BuildRequest {
        dir: &a.dir,
        master: &master,
        tag: &tag,
        entrypoint: a.entrypoint.as_deref(),
        creator_key: creator_key.as_ref(),
        builder_key: builder_key.as_ref(),
    };
    let built = runtime()?.block_on(image::build(
        &a.reg.registry(),
        &req,
        &pht_term::Bars::default(),
    ))?;
    let rep = &built.report;
    if a.json {
        pht_term::outln!("{}", serde_json::to_string_pretty(rep)?);
    } else {
        pht_term::outln!(
            "pushed {}@{} (on master {}, {} blobs sent, {} bytes)",
            tag,
            rep.digest,
            built.master.digest,
            rep.sent,
            rep.bytes_sent
        );
    }
    Ok(())
}
