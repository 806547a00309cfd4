//! Passes PyO3's interpreter cfgs (notably `Py_GIL_DISABLED`) to this
//! crate, so src/mapping.rs can tell a GIL build from a free-threaded one.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
