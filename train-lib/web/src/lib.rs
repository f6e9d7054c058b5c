//! What the PHT's HTTP servers share, so the route service and the station's dashboard hold
//! the same line: [`listen`], the accept loop with a header-read timeout and a connection cap;
//! [`guard`], the dashboards' Content-Security-Policy, security headers, session cookie, CSRF
//! token and origin check.

pub mod assets;
pub mod guard;
pub mod listen;
pub mod page;
pub mod time;
