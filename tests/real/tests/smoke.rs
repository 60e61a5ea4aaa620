//! The real-code world boots and carries data through the C ptm.c.

#[cfg(has_illumos)]
#[test]
fn manager_and_subsidiary_exchange_data() {
    use ptm_real::*;
    let mut w = World::new().expect("world");
    let m = w.open_manager(2).expect("open ptmx");
    let (maj, minor) = w.fstat_dev(m).unwrap();
    assert_eq!(maj, PTM_MAJOR);
    assert!(minor >= 1);
    const UNLKPT: i32 = (b'P' as i32) << 8 | 2;
    w.ioctl(m, UNLKPT, &[]).expect("unlkpt");
    let s = w.open_subsidiary(minor, 2).expect("open pts");
    assert_eq!(w.write(m, b"hello").unwrap(), 5);
    assert_eq!(w.read(s, 100).unwrap(), b"hello");
    assert_eq!(w.write(s, b"back").unwrap(), 4);
    assert_eq!(w.read(m, 100).unwrap(), b"back");
    let ev = w.finish().expect("finish");
    println!("{ev:#?}");
}

#[cfg(not(has_illumos))]
#[test]
fn manager_and_subsidiary_exchange_data() {
    println!("SKIPPED: ILLUMOS_SRC not set (the real-code world is not built)");
}
