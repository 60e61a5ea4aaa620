/*
 * Kernel interfaces the bundled code refers to but this world does not
 * provide, because nothing a pty session does reaches them: other module
 * types (system calls, file systems, exec formats, scheduling classes,
 * brands, ...) in modconf.c, file-descriptor passing (I_SENDFD/I_RECVFD),
 * multiplexors (I_LINK through LDI), IP checksums, FIFOs, auditing records.
 * Each function stops the world with its name if it is ever called, so a
 * scenario that strays here fails loudly instead of running on a guess.
 *
 * No illumos header is included: these definitions only need to carry the
 * names, and must not meet the headers' prototypes.
 */

extern void kp_absent(const char *) __attribute__((noreturn));

#define	ABSENT(name) \
	void name(void); \
	void name(void) { kp_absent(#name); }

ABSENT(alloc_cid)
ABSENT(allocate_execsw)
ABSENT(allocate_vfssw)
ABSENT(audit_fdrecv)
ABSENT(audit_fdsend)
ABSENT(audit_strputmsg)
ABSENT(biofini)
ABSENT(bioinit)
ABSENT(brand_register)
ABSENT(brand_unregister)
ABSENT(callb_generic_cpr)
ABSENT(closef)
ABSENT(dacf_module_register)
ABSENT(dacf_module_unregister)
ABSENT(ddifail)
ABSENT(disp_add)
ABSENT(fifo_getinfo)
ABSENT(findexecsw)
ABSENT(getcidbyname)
ABSENT(getf)
ABSENT(hat_getpfnum)
ABSENT(i_ddi_map_fault)
ABSENT(initialize_vopstats)
ABSENT(ip_ocsum)
ABSENT(ipp_mod_lookup)
ABSENT(ipp_mod_register)
ABSENT(ipp_mod_unregister)
ABSENT(kcpc_register_pcbe)
ABSENT(kiconv_register_module)
ABSENT(kstat_install)
ABSENT(kiconv_unregister_module)
ABSENT(kill)
ABSENT(ldi_close)
ABSENT(ldi_ident_from_major)
ABSENT(ldi_ident_release)
ABSENT(ldi_ioctl)
ABSENT(ldi_mlink_fp)
ABSENT(ldi_mlink_lh)
ABSENT(ldi_munlink_fp)
ABSENT(ldi_open_by_dev)
ABSENT(loadable_syscall)
ABSENT(mod_getsysnum)
ABSENT(new_vskstat)
ABSENT(nosys32)
ABSENT(releasef)
ABSENT(sad_ap_rele)
ABSENT(setf)
ABSENT(smod_register)
ABSENT(smod_unregister)
ABSENT(syscall_ap)
ABSENT(ufalloc)
ABSENT(vfs_copyopttbl)
ABSENT(vfs_freeopttbl)
ABSENT(vfs_getvfsswbyname)
ABSENT(vfs_mergeopttbl)
ABSENT(vfs_opsinuse)
ABSENT(vfs_unrefvfssw)

/*
 * Data of those subsystems: present (modconf.c names them) and never used
 * by the code paths this world runs. moddebug and the auto-unload thread
 * are read by modconf.c's driver removal: no debugging flags, no
 * auto-unload thread.
 */
int moddebug = 0;
void *mod_aul_thread = 0;
int vopstats_enabled = 0;
void *vopstats_fstype = 0;
int loaded_classes = 0;
char class_lock[8];
char execsw[8];
char sclass[8];
char sysent[8];
char sysent32[8];
char vfssw[8];
char vfssw_lock[8];
char vfs_mntopts[16];
