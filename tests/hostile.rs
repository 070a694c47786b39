//! Hostile components written as text rather than built from Rust: shapes a
//! compiler would not make, that only an attacker would upload.

/// A component that instantiates `count` core modules, each with a linear
/// memory of one page and a table: were it accepted, every call of it would
/// take that many slots of the host's instance pool.
pub fn many_instances(count: usize) -> Vec<u8> {
    let instances = "(core instance (instantiate $m))\n".repeat(count);
    let text = format!("(component (core module $m (memory 1) (table 1 funcref))\n{instances})");
    wat::parse_str(text).expect("the text is a component")
}
