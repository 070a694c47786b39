//! A component of another world: it exports `run`, not `economy:plugin/rules`.

#![cfg(target_arch = "wasm32")]
#![expect(unsafe_code, reason = "wit-bindgen generates the unsafe canonical-ABI glue")]

wit_bindgen::generate!({
    inline: "package test:other; world other { export run: func() -> u32; }",
});

struct Other;

impl Guest for Other {
    fn run() -> u32 {
        7
    }
}

export!(Other);
