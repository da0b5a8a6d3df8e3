//! `sangdam-host`: the companion tool that prepares models for the box.
//!
//! The corpus reader, training, ONNX export, quantization and evaluation land with the
//! host-tool issue; until then this binary only says so.

fn main() {
    eprintln!(
        "sangdam-host: no subcommands yet (corpus, train, export, quantize and eval are planned)"
    );
    std::process::exit(2);
}
