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

/// `component` with a custom section named `tag` appended: the same
/// component to run, another one to store (its SHA-256 differs). What a
/// loop of uploads that grows a host's memory and rows would send.
pub fn tagged(component: &[u8], tag: &str) -> Vec<u8> {
    let mut section = leb128(tag.len());
    section.extend_from_slice(tag.as_bytes());
    let mut tagged = component.to_vec();
    tagged.push(0);
    tagged.extend(leb128(section.len()));
    tagged.extend(section);
    tagged
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}
