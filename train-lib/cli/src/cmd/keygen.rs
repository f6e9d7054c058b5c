//! `train keygen`: a key pair, the private half created 0600.

use crate::cli::KeygenArgs;
use anyhow::{Context, Result};
use std::io::Write;
use train_lib::keys::PrivateKey;

/// Writes `D/NAME.key.pem` and `D/NAME.pub.pem`; prints both paths and the fingerprint.
pub fn run(a: &KeygenArgs) -> Result<()> {
    let key = PrivateKey::generate(a.bits)?;
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let priv_path = a.out_dir.join(format!("{}.key.pem", a.name));
    let pub_path = a.out_dir.join(format!("{}.pub.pem", a.name));
    let mut f = train_lib::tree::private::create_file(&priv_path)
        .with_context(|| format!("creating {} (it must not exist)", priv_path.display()))?;
    f.write_all(key.to_pkcs8_pem()?.as_bytes())?;
    std::fs::write(&pub_path, key.public().to_pem())
        .with_context(|| format!("writing {}", pub_path.display()))?;
    pht_term::outln!(
        "{}\n{}\n{}",
        priv_path.display(),
        pub_path.display(),
        key.public().fingerprint()
    );
    Ok(())
}
