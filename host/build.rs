//! With the `torch` feature: libtorch's folder goes into the rpath of the host tool's
//! binaries and tests, so they run without LD_LIBRARY_PATH, and a CUDA build of
//! libtorch (PyPI's torch is one) is linked even though no symbol of it is named from
//! Rust: its kernels register themselves when the library loads, and `--as-needed`
//! would otherwise drop it, leaving `--cuda` without a device.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        let cuda = std::path::Path::new(&dir).join("libtorch_cuda.so").exists();
        println!(
            "cargo:rustc-env=SANGDAM_LIBTORCH_CUDA={}",
            if cuda { "yes" } else { "no" }
        );
        if cuda {
            println!("cargo:rustc-link-arg=-L{dir}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
