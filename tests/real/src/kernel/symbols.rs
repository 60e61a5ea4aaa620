//! Names for code addresses: the test executable's own symbol table,
//! which holds every function of the kernel, static ones included (for
//! reports such as "allocated by ptms_grow").

use std::sync::OnceLock;

use object::{Object, ObjectSymbol, SymbolKind};

/// Function symbols (address in this process, size, name), by address.
fn table() -> &'static Vec<(usize, usize, String)> {
    static T: OnceLock<Vec<(usize, usize, String)>> = OnceLock::new();
    T.get_or_init(|| {
        let Ok(data) = std::fs::read("/proc/self/exe") else {
            return Vec::new();
        };
        let Ok(file) = object::File::parse(&*data) else {
            return Vec::new();
        };
        // The executable is position-independent: its load bias is where a
        // known function is minus where the table says it is.
        let anchor = super::kmem::kp_kmem_free as *const () as usize;
        let bias = file
            .symbols()
            .find(|s| s.name() == Ok("kp_kmem_free"))
            .map(|s| anchor.wrapping_sub(s.address() as usize));
        let Some(bias) = bias else { return Vec::new() };
        let mut v: Vec<(usize, usize, String)> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .filter_map(|s| {
                let n = s.name().ok()?;
                Some((s.address() as usize + bias, s.size() as usize, n.to_owned()))
            })
            .collect();
        v.sort_unstable();
        v
    })
}

/// The function containing `addr`, or the address itself.
pub fn name_of(addr: usize) -> String {
    let t = table();
    let i = t.partition_point(|e| e.0 <= addr);
    match i.checked_sub(1).map(|i| &t[i]) {
        Some((start, size, name)) if addr < start + size => name.clone(),
        _ => format!("{addr:#x}"),
    }
}
