//! One file per subcommand.

pub mod create;
pub mod image_build;
pub mod image_copy;
pub mod keygen;
pub mod results;
pub mod route;
pub mod status;
pub mod step;
pub mod submit;
pub mod verify;
