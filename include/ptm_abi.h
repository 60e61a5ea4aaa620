/*
 * ptm_abi.h -- the subset of the illumos amd64 (LP64) kernel ABI that the
 * pseudo-terminal manager driver uses: DDI, STREAMS, module linkage and the
 * ptms_conf interface shared with pts.
 *
 * This header is written by the ptm-rs project from the compiler-verified
 * facts in docs/abi.md (illumos-gate 367731f0, 2025-02).  It is
 * consumed three ways:
 *
 *   1. build.rs runs bindgen over it to produce the raw Rust bindings
 *      (src/sys.rs includes them);
 *   2. the include/sys/ shim headers include it, so that the unmodified
 *      illumos ptm.c compiles against it (the differential oracle);
 *   3. the _Static_asserts at the end pin every size and offset that ptm,
 *      the STREAMS framework or ptms_conf touches, so a wrong field breaks
 *      the build rather than a kernel.
 *
 * It is self-contained: it includes nothing, so it can be compiled with
 * -nostdinc for any x86_64 target.  Only types whose layout matters are
 * spelled out; everything ptm passes along without looking inside is an
 * incomplete struct.
 */
#ifndef PTM_ABI_H
#define	PTM_ABI_H

#if !defined(__x86_64__) || !defined(__LP64__)
#error "ptm_abi.h describes the illumos amd64 (LP64) ABI only"
#endif

/* ---------------------------------------------------------------------
 * Scalar types (sys/types.h, sys/int_types.h)
 * --------------------------------------------------------------------- */
#ifndef NULL
#define	NULL	((void *)0)
#endif

typedef signed char		int8_t;
typedef unsigned char		uint8_t;
typedef short			int16_t;
typedef unsigned short		uint16_t;
typedef int			int32_t;
typedef unsigned int		uint32_t;
typedef long			int64_t;
typedef unsigned long		uint64_t;

typedef unsigned char		uchar_t;
typedef unsigned short		ushort_t;
typedef unsigned int		uint_t;
typedef unsigned long		ulong_t;
typedef unsigned long		size_t;
typedef long			ssize_t;
typedef long			intptr_t;
typedef unsigned long		uintptr_t;
typedef char			*caddr_t;

typedef unsigned long		dev_t;		/* 32-bit major, 32-bit minor */
typedef unsigned int		major_t;
typedef unsigned int		minor_t;
typedef short			o_dev_t;
typedef unsigned int		uid_t;		/* unsigned since PSARC 2007/064 */
typedef unsigned int		gid_t;
typedef int			pid_t;
typedef int			id_t;
typedef int			zoneid_t;
typedef long			clock_t;
typedef short			pri_t;
typedef long			off_t;
typedef long long		offset_t;
typedef long			daddr_t;

typedef enum { B_FALSE = 0, B_TRUE = 1 } boolean_t;

/* ---------------------------------------------------------------------
 * Opaque kernel objects ptm only passes along
 * --------------------------------------------------------------------- */
typedef struct cred	cred_t;		/* sys/cred_impl.h; never looked into */
typedef struct zone	zone_t;		/* held reference from zone_find_by_id */
/*
 * illumos declares dev_info_t as a pointer to an opaque struct and passes
 * dev_info_t *; declaring the struct itself opaque keeps the same ABI (one
 * pointer) and reads naturally.
 */
typedef struct dev_info	dev_info_t;
struct stdata;
struct syncq;
struct fmodsw_impl;
struct module_stat;
struct struiod;
struct infod;
struct fthdr;
struct buf;
struct uio;
struct as;
struct pollhead;
struct aio_req;
struct bus_ops;
typedef struct struiod	struiod_t;
typedef struct infod	infod_t;
typedef void		*devmap_cookie_t;

/* ---------------------------------------------------------------------
 * Synchronisation (sys/mutex.h, sys/condvar.h): opaque storage only
 * --------------------------------------------------------------------- */
typedef struct kmutex {
	void	*_opaque[1];
} kmutex_t;

typedef struct kcondvar {
	ushort_t _opaque;
} kcondvar_t;

/* ---------------------------------------------------------------------
 * STREAMS (sys/stream.h, sys/strsun.h, sys/stropts.h)
 * --------------------------------------------------------------------- */
struct msgb;
struct datab;
struct queue;
struct qband;

typedef struct free_rtn {
	void	(*free_func)();
	caddr_t	free_arg;
} frtn_t;

typedef struct datab {
	frtn_t		*db_frtnp;
	unsigned char	*db_base;
	unsigned char	*db_lim;
	unsigned char	db_ref;
	unsigned char	db_type;
	unsigned char	db_flags;
	unsigned char	db_struioflag;
	pid_t		db_cpid;
	void		*db_cache;
	struct msgb	*db_mblk;
	void		(*db_free)(struct msgb *, struct datab *);
	void		(*db_lastfree)(struct msgb *, struct datab *);
	intptr_t	db_cksumstart;
	intptr_t	db_cksumend;
	intptr_t	db_cksumstuff;
	union {
		double		enforce_alignment;
		unsigned char	data[8];
		struct {
			union {
				uint32_t u32;
				uint16_t u16;
			} cksum_val;
			uint16_t flags;
			uint16_t pad;
		} cksum;
	} db_struioun;
	struct fthdr	*db_fthdr;
	cred_t		*db_credp;
} dblk_t;

typedef struct msgb {
	struct msgb	*b_next;
	struct msgb	*b_prev;
	struct msgb	*b_cont;
	unsigned char	*b_rptr;
	unsigned char	*b_wptr;
	struct datab	*b_datap;
	unsigned char	b_band;
	unsigned char	b_tag;
	unsigned short	b_flag;
	struct queue	*b_queue;
} mblk_t;

typedef struct qband {
	struct qband	*qb_next;
	size_t		qb_count;
	struct msgb	*qb_first;
	struct msgb	*qb_last;
	size_t		qb_hiwat;
	size_t		qb_lowat;
	uint_t		qb_flag;
	size_t		qb_mblkcnt;
} qband_t;

typedef struct queue {
	struct qinit	*q_qinfo;
	struct msgb	*q_first;
	struct msgb	*q_last;
	struct queue	*q_next;
	struct queue	*q_link;
	void		*q_ptr;
	size_t		q_count;
	uint_t		q_flag;
	ssize_t		q_minpsz;
	ssize_t		q_maxpsz;
	size_t		q_hiwat;
	size_t		q_lowat;
	struct qband	*q_bandp;
	kmutex_t	q_lock;
	struct stdata	*q_stream;
	struct syncq	*q_syncq;
	unsigned char	q_nband;
	kcondvar_t	q_wait;
	struct queue	*q_nfsrv;
	ushort_t	q_draining;
	short		q_struiot;
	clock_t		q_qtstamp;
	size_t		q_mblkcnt;
	uint_t		q_syncqmsgs;
	size_t		q_rwcnt;
	pri_t		q_spri;
	struct msgb	*q_sqhead;
	struct msgb	*q_sqtail;
	struct queue	*q_sqnext;
	struct queue	*q_sqprev;
	uint_t		q_sqflags;
	clock_t		q_sqtstamp;
	struct fmodsw_impl *q_fp;
} queue_t;

typedef int (*qi_putp_t)(queue_t *, mblk_t *);
typedef int (*qi_srvp_t)(queue_t *);
typedef int (*qi_qopen_t)(queue_t *, dev_t *, int, int, cred_t *);
typedef int (*qi_qclose_t)(queue_t *, int, cred_t *);
typedef int (*qi_qadmin_t)(void);
typedef int (*qi_rwp_t)(queue_t *, struiod_t *);
typedef int (*qi_infop_t)(queue_t *, infod_t *);

struct module_info {
	ushort_t	mi_idnum;
	char		*mi_idname;
	ssize_t		mi_minpsz;
	ssize_t		mi_maxpsz;
	size_t		mi_hiwat;
	size_t		mi_lowat;
};

struct qinit {
	qi_putp_t	qi_putp;
	qi_srvp_t	qi_srvp;
	qi_qopen_t	qi_qopen;
	qi_qclose_t	qi_qclose;
	qi_qadmin_t	qi_qadmin;
	struct module_info *qi_minfo;
	struct module_stat *qi_mstat;
	qi_rwp_t	qi_rwp;
	qi_infop_t	qi_infop;
	int		qi_struiot;
};

struct streamtab {
	struct qinit	*st_rdinit;
	struct qinit	*st_wrinit;
	struct qinit	*st_muxrinit;
	struct qinit	*st_muxwinit;
};

/* M_IOCTL header, LP64 layout */
struct iocblk {
	int		ioc_cmd;
	cred_t		*ioc_cr;
	uint_t		ioc_id;
	uint_t		ioc_flag;
	size_t		ioc_count;
	int		ioc_rval;
	int		ioc_error;
};

/* M_SETOPTS payload */
struct stroptions {
	uint_t		so_flags;
	short		so_readopt;
	ushort_t	so_wroff;
	ssize_t		so_minpsz;
	ssize_t		so_maxpsz;
	size_t		so_hiwat;
	size_t		so_lowat;
	unsigned char	so_band;
	ushort_t	so_erropt;
	ssize_t		so_maxblk;
	ushort_t	so_copyopt;
	ushort_t	so_tail;
};

/* Message types */
#define	M_DATA		0x00
#define	M_PROTO		0x01
#define	M_MULTIDATA	0x02
#define	M_BREAK		0x08
#define	M_PASSFP	0x09
#define	M_EVENT		0x0a
#define	M_SIG		0x0b
#define	M_DELAY		0x0c
#define	M_CTL		0x0d
#define	M_IOCTL		0x0e
#define	M_SETOPTS	0x10
#define	M_RSE		0x11
#define	M_IOCACK	0x81
#define	M_IOCNAK	0x82
#define	M_PCPROTO	0x83
#define	M_PCSIG		0x84
#define	M_READ		0x85
#define	M_FLUSH		0x86
#define	M_STOP		0x87
#define	M_START		0x88
#define	M_HANGUP	0x89
#define	M_ERROR		0x8a
#define	M_COPYIN	0x8b
#define	M_COPYOUT	0x8c
#define	M_IOCDATA	0x8d
#define	M_PCRSE		0x8e
#define	M_STOPI		0x8f
#define	M_STARTI	0x90
#define	M_PCEVENT	0x91
#define	M_UNHANGUP	0x92
#define	M_CMD		0x93

#define	QNORM		0x00
#define	QPCTL		0x80

/* M_FLUSH flags (sys/stropts.h) and flushq modes (sys/stream.h) */
#define	FLUSHR		0x01
#define	FLUSHW		0x02
#define	FLUSHRW		0x03
#define	FLUSHBAND	0x04
#define	FLUSHALL	1
#define	FLUSHDATA	0

/* allocb priorities, open flags, misc */
#define	BPRI_LO		1
#define	BPRI_MED	2
#define	BPRI_HI		3
#define	MODOPEN		0x1
#define	CLONEOPEN	0x2
#define	OPENFAIL	(-1)
#define	INFPSZ		(-1)
#define	STRHIGH		5120
#define	STRLOW		1024
#define	TRANSPARENT	0xffffffffU	/* (unsigned int)-1 */
#define	NOERROR		0xff		/* (unsigned char)-1: "no error" */
#define	NBAND		256

/* queue_t q_flag */
#define	QENAB		0x00000001
#define	QWANTR		0x00000002
#define	QWANTW		0x00000004
#define	QFULL		0x00000008
#define	QREADR		0x00000010
#define	QUSE		0x00000020
#define	QNOENB		0x00000040
#define	QBACK		0x00000100
#define	QMTSAFE		0x00004000
#define	QINSERVICE	0x00010000
#define	QWCLOSE		0x00020000
#define	QEND		0x00040000
#define	QWANTWSYNC	0x00080000
#define	QISDRV		0x00200000

/* qband_t qb_flag */
#define	QB_FULL		0x01
#define	QB_WANTW	0x02
#define	QB_BACK		0x04

/* struct stroptions so_flags */
#define	SO_ALL		0x003f
#define	SO_READOPT	0x0001
#define	SO_WROFF	0x0002
#define	SO_MINPSZ	0x0004
#define	SO_MAXPSZ	0x0008
#define	SO_HIWAT	0x0010
#define	SO_LOWAT	0x0020
#define	SO_MREADON	0x0040
#define	SO_MREADOFF	0x0080
#define	SO_NDELON	0x0100
#define	SO_NDELOFF	0x0200
#define	SO_ISTTY	0x0400
#define	SO_ISNTTY	0x0800
#define	SO_TOSTOP	0x1000
#define	SO_TONSTOP	0x2000
#define	SO_BAND		0x4000
#define	SO_DELIM	0x8000
#define	SO_NODELIM	0x010000
#define	SO_STRHOLD	0x020000
#define	SO_ERROPT	0x040000
#define	SO_COPYOPT	0x080000
#define	SO_MAXBLK	0x100000
#define	SO_TAIL		0x200000

/* STREAMS utilities (io/stream.c, os/putnext.c, io/strsun.c, os/ddi.c) */
extern mblk_t	*allocb(size_t, uint_t);
extern void	freemsg(mblk_t *);
extern void	freeb(mblk_t *);
extern mblk_t	*getq(queue_t *);
extern int	putq(queue_t *, mblk_t *);
extern int	putbq(queue_t *, mblk_t *);
extern void	putnext(queue_t *, mblk_t *);
extern int	putnextctl(queue_t *, int);
extern void	qreply(queue_t *, mblk_t *);
extern void	qenable(queue_t *);
extern void	flushq(queue_t *, int);
extern void	flushband(queue_t *, unsigned char, int);
extern int	bcanputnext(queue_t *, unsigned char);
extern void	qprocson(queue_t *);
extern void	qprocsoff(queue_t *);
extern void	miocack(queue_t *, mblk_t *, int, int);
extern void	miocnak(queue_t *, mblk_t *, int, int);
extern int	miocpullup(mblk_t *, size_t);
extern mblk_t	*mexchange(queue_t *, mblk_t *, size_t, uchar_t, int32_t);

/*
 * sys/ddi.h turns these into real functions in a driver compile (it
 * #undefs the sysmacros.h/strsubr.h macros), so ptm calls them.
 */
extern queue_t	*WR(queue_t *);
extern queue_t	*RD(queue_t *);
extern queue_t	*OTHERQ(queue_t *);
extern minor_t	getminor(dev_t);
extern major_t	getmajor(dev_t);
extern dev_t	makedevice(major_t, minor_t);
extern int	drv_priv(cred_t *);

/* ---------------------------------------------------------------------
 * Locks (sys/mutex.h, sys/condvar.h)
 * --------------------------------------------------------------------- */
extern void	mutex_enter(kmutex_t *);
extern void	mutex_exit(kmutex_t *);
extern void	cv_wait(kcondvar_t *, kmutex_t *);
extern void	cv_broadcast(kcondvar_t *);

/* ---------------------------------------------------------------------
 * Zones and credentials (sys/zone.h, sys/cred.h, sys/param.h)
 * --------------------------------------------------------------------- */
#define	MIN_ZONEID	0
#define	MAX_ZONEID	9999
#define	GLOBAL_ZONEID	0
#define	MIN_USERZONEID	1
#define	ALL_ZONES	(-1)
#define	MAXUID		2147483647

extern zone_t	*zone_find_by_id(zoneid_t);
extern void	zone_rele(zone_t *);
extern boolean_t valid_ephemeral_uid(zone_t *, uid_t);
extern boolean_t valid_ephemeral_gid(zone_t *, gid_t);

#define	VALID_UID(id, zone) \
	((id) <= MAXUID || valid_ephemeral_uid((zone), (id)))
#define	VALID_GID(id, zone) \
	((id) <= MAXUID || valid_ephemeral_gid((zone), (id)))

/* ---------------------------------------------------------------------
 * Constants: sys/param.h, sys/errno.h, sys/file.h, sys/stat.h, devices
 * --------------------------------------------------------------------- */
#define	_TTY_BUFSIZ	2048

#define	EPERM		1
#define	ENOENT		2
#define	EINTR		4
#define	EIO		5
#define	ENXIO		6
#define	EBADF		9
#define	EAGAIN		11
#define	ENOMEM		12
#define	EACCES		13
#define	EFAULT		14
#define	EBUSY		16
#define	EEXIST		17
#define	EINVAL		22
#define	ENOTTY		25
#define	ERANGE		34
#define	ENOSR		63
#define	ETIME		62

#define	FREAD		0x01
#define	FWRITE		0x02
#define	FNDELAY		0x04
#define	FNONBLOCK	0x80
#define	FEXCL		0x400
#define	FNOCTTY		0x800

#define	S_IFMT		0xF000
#define	S_IFCHR		0x2000

#define	NODEV		0xffffffffffffffffUL	/* (dev_t)-1 */
#define	NBITSMINOR64	32
#define	NBITSMAJOR64	32
#define	MAXMIN64	0xffffffffUL
#define	MAXMAJ64	0xffffffffUL
#define	DDI_MAJOR_T_NONE 0xffffffffU	/* (major_t)-1 */

/* cmn_err levels (sys/cmn_err.h) */
#define	CE_CONT		0
#define	CE_NOTE		1
#define	CE_WARN		2
#define	CE_PANIC	3
#define	CE_IGNORE	4
extern void	cmn_err(int, const char *, ...);

/* ---------------------------------------------------------------------
 * DDI: device ops, minor nodes (sys/devops.h, sys/conf.h, sys/sunddi.h)
 * --------------------------------------------------------------------- */
typedef enum {
	DDI_ATTACH = 0,
	DDI_RESUME = 1,
	DDI_PM_RESUME = 2
} ddi_attach_cmd_t;

typedef enum {
	DDI_DETACH = 0,
	DDI_SUSPEND = 1,
	DDI_PM_SUSPEND = 2,
	DDI_HOTPLUG_DETACH = 3
} ddi_detach_cmd_t;

typedef enum {
	DDI_INFO_DEVT2DEVINFO = 0,
	DDI_INFO_DEVT2INSTANCE = 1
} ddi_info_cmd_t;

typedef enum {
	DDI_RESET_FORCE = 0
} ddi_reset_cmd_t;

typedef enum {
	PROP_LEN = 0,
	PROP_LEN_AND_VAL_BUF = 1,
	PROP_LEN_AND_VAL_ALLOC = 2,
	PROP_EXISTS = 3
} ddi_prop_op_t;

#define	DDI_SUCCESS	0
#define	DDI_FAILURE	(-1)
#define	DDI_PSEUDO	"ddi_pseudo"
#define	CLONE_DEV	1
#define	DEVO_REV	4
#define	CB_REV		1
#define	D_NEW		0x00
#define	D_MP		0x20
#define	D_MTSAFE	0x20

struct cb_ops {
	int	(*cb_open)(dev_t *, int, int, cred_t *);
	int	(*cb_close)(dev_t, int, int, cred_t *);
	int	(*cb_strategy)(struct buf *);
	int	(*cb_print)(dev_t, char *);
	int	(*cb_dump)(dev_t, caddr_t, daddr_t, int);
	int	(*cb_read)(dev_t, struct uio *, cred_t *);
	int	(*cb_write)(dev_t, struct uio *, cred_t *);
	int	(*cb_ioctl)(dev_t, int, intptr_t, int, cred_t *, int *);
	int	(*cb_devmap)(dev_t, devmap_cookie_t, offset_t, size_t,
		    size_t *, uint_t);
	int	(*cb_mmap)(dev_t, off_t, int);
	int	(*cb_segmap)(dev_t, off_t, struct as *, caddr_t *, off_t,
		    uint_t, uint_t, uint_t, cred_t *);
	int	(*cb_chpoll)(dev_t, short, int, short *, struct pollhead **);
	int	(*cb_prop_op)(dev_t, dev_info_t *, ddi_prop_op_t, int, char *,
		    caddr_t, int *);
	struct streamtab *cb_str;
	int	cb_flag;
	int	cb_rev;
	int	(*cb_aread)(dev_t, struct aio_req *, cred_t *);
	int	(*cb_awrite)(dev_t, struct aio_req *, cred_t *);
};

struct dev_ops {
	int	devo_rev;
	int	devo_refcnt;
	int	(*devo_getinfo)(dev_info_t *, ddi_info_cmd_t, void *, void **);
	int	(*devo_identify)(dev_info_t *);
	int	(*devo_probe)(dev_info_t *);
	int	(*devo_attach)(dev_info_t *, ddi_attach_cmd_t);
	int	(*devo_detach)(dev_info_t *, ddi_detach_cmd_t);
	int	(*devo_reset)(dev_info_t *, ddi_reset_cmd_t);
	struct cb_ops	*devo_cb_ops;
	struct bus_ops	*devo_bus_ops;
	int	(*devo_power)(dev_info_t *, int, int);
	int	(*devo_quiesce)(dev_info_t *);
};

/* Old-style declarations, exactly as sys/systm.h has them: they fit any slot. */
extern int	nulldev();
extern int	nodev();
extern int	nochpoll(dev_t, short, int, short *, struct pollhead **);
extern int	ddi_prop_op(dev_t, dev_info_t *, ddi_prop_op_t, int, char *,
		    caddr_t, int *);
extern int	ddi_quiesce_not_supported(dev_info_t *);
extern int	ddi_create_minor_node(dev_info_t *, const char *, int, minor_t,
		    const char *, int);
extern void	ddi_remove_minor_node(dev_info_t *, const char *);

/*
 * DDI_DEFINE_STREAM_OPS (sys/devops.h): a cb_ops whose only live member is
 * the streamtab, and a dev_ops that points at it.
 */
#define	DDI_DEFINE_STREAM_OPS(XXname, XXidentify, XXprobe, XXattach,	\
	XXdetach, XXreset, XXgetinfo, XXflag, XXstream_tab, XXquiesce)	\
static struct cb_ops cb_##XXname = {					\
	nulldev,			/* cb_open */			\
	nulldev,			/* cb_close */			\
	nodev,				/* cb_strategy */		\
	nodev,				/* cb_print */			\
	nodev,				/* cb_dump */			\
	nodev,				/* cb_read */			\
	nodev,				/* cb_write */			\
	nodev,				/* cb_ioctl */			\
	nodev,				/* cb_devmap */			\
	nodev,				/* cb_mmap */			\
	nodev,				/* cb_segmap */			\
	nochpoll,			/* cb_chpoll */			\
	ddi_prop_op,			/* cb_prop_op */		\
	(XXstream_tab),			/* cb_str */			\
	(int)(XXflag),			/* cb_flag */			\
	CB_REV,				/* cb_rev */			\
	nodev,				/* cb_aread */			\
	nodev				/* cb_awrite */			\
};									\
static struct dev_ops XXname = {					\
	DEVO_REV,			/* devo_rev */			\
	0,				/* devo_refcnt */		\
	(XXgetinfo),			/* devo_getinfo */		\
	(XXidentify),			/* devo_identify */		\
	(XXprobe),			/* devo_probe */		\
	(XXattach),			/* devo_attach */		\
	(XXdetach),			/* devo_detach */		\
	(XXreset),			/* devo_reset */		\
	&(cb_##XXname),			/* devo_cb_ops */		\
	(struct bus_ops *)NULL,		/* devo_bus_ops */		\
	NULL,				/* devo_power */		\
	(XXquiesce)			/* devo_quiesce */		\
}

/* ---------------------------------------------------------------------
 * Loadable-module linkage (sys/modctl.h)
 * --------------------------------------------------------------------- */
#define	MODREV_1		1
#define	MODMAXNAMELEN		32
#define	MODMAXLINKINFOLEN	32
#define	MODMAXLINK		10

struct mod_ops {
	int	(*modm_install)();
	int	(*modm_remove)();
	int	(*modm_info)();
};

struct modldrv {
	struct mod_ops	*drv_modops;
	char		*drv_linkinfo;
	struct dev_ops	*drv_dev_ops;
};

struct modlinkage {
	int	ml_rev;
	void	*ml_linkage[7];		/* LP64: 7 slots, NULL-terminated */
};

struct modspecific_info {
	char	msi_linkinfo[MODMAXLINKINFOLEN];
	int	msi_p0;
};

struct modinfo {
	int		mi_info;
	int		mi_state;
	int		mi_id;
	int		mi_nextid;
	caddr_t		mi_base;
	size_t		mi_size;
	int		mi_rev;
	int		mi_loadcnt;
	char		mi_name[MODMAXNAMELEN];
	struct modspecific_info mi_msinfo[MODMAXLINK];
};

extern struct mod_ops	mod_driverops;
extern int	mod_install(struct modlinkage *);
extern int	mod_remove(struct modlinkage *);
extern int	mod_info(struct modlinkage *, struct modinfo *);

/* ---------------------------------------------------------------------
 * Pseudo-terminal shared state (sys/ptms.h), allocated by genunix
 * --------------------------------------------------------------------- */
struct pt_ttys {
	queue_t		*ptm_rdq;	/* manager read queue */
	queue_t		*pts_rdq;	/* subsidiary read queue */
	mblk_t		*pt_nullmsg;	/* zero-length msg for subsidiary close */
	pid_t		pt_pid;		/* process id, for debugging */
	minor_t		pt_minor;
	int		pt_refcnt;	/* >0 readers, -1 writer */
	ushort_t	pt_state;	/* PTLOCK, PTMOPEN, PTSOPEN, PTSTTY */
	kcondvar_t	pt_cv;
	kmutex_t	pt_lock;
	zoneid_t	pt_zoneid;
	uid_t		pt_ruid;	/* subsidiary node owner */
	gid_t		pt_rgid;
};

typedef struct pt_own {
	uid_t	pto_ruid;
	gid_t	pto_rgid;
} pt_own_t;

/* pt_state */
#define	PTLOCK		0x01
#define	PTMOPEN		0x02
#define	PTSOPEN		0x04
#define	PTSTTY		0x08

/* ioctls on the manager: ('P' << 8) | n */
#define	ISPTM		((0x50 << 8) | 1)	/* ('P' << 8) | 1 */
#define	UNLKPT		((0x50 << 8) | 2)
#define	PTSSTTY		((0x50 << 8) | 3)
#define	ZONEPT		((0x50 << 8) | 4)
#define	OWNERPT		((0x50 << 8) | 5)

extern void		ptms_init(void);
extern struct pt_ttys	*pt_ttys_alloc(void);
extern void		ptms_close(struct pt_ttys *, uint_t);
extern int		ptms_attach_subsidiary(void);

/*
 * Reference-count "reader/writer locks" that keep the peer queue alive
 * while it is used (see the synchronisation notes in ptm.c).  Readers may
 * nest; the single writer (open/close) waits for the count to drain.
 */
#define	PT_ENTER_READ(p) {					\
	mutex_enter(&(p)->pt_lock);				\
	while ((p)->pt_refcnt < 0)				\
		cv_wait(&((p)->pt_cv), &(p)->pt_lock);		\
	(p)->pt_refcnt++;					\
	mutex_exit(&(p)->pt_lock);				\
}

#define	PT_ENTER_WRITE(p) {					\
	mutex_enter(&(p)->pt_lock);				\
	while ((p)->pt_refcnt != 0)				\
		cv_wait(&((p)->pt_cv), &(p)->pt_lock);		\
	(p)->pt_refcnt = -1;					\
	mutex_exit(&(p)->pt_lock);				\
}

#define	PT_EXIT_READ(p) {					\
	mutex_enter(&(p)->pt_lock);				\
	ASSERT((p)->pt_refcnt > 0);				\
	if (--((p)->pt_refcnt) == 0)				\
		cv_broadcast(&(p)->pt_cv);			\
	mutex_exit(&(p)->pt_lock);				\
}

#define	PT_EXIT_WRITE(p) {					\
	mutex_enter(&(p)->pt_lock);				\
	ASSERT((p)->pt_refcnt == -1);				\
	(p)->pt_refcnt = 0;					\
	cv_broadcast(&(p)->pt_cv);				\
	mutex_exit(&(p)->pt_lock);				\
}

/* ---------------------------------------------------------------------
 * Debug hooks: all compiled out in a non-DEBUG kernel (ptms_log and
 * ptms_logp exist only in DEBUG kernels, so they must not be referenced).
 * ptm.c defines its own DBG().
 * --------------------------------------------------------------------- */
#ifdef DEBUG
extern void assfail(const char *, const char *, int);
extern void ptms_log(char *, uint_t);
extern void ptms_logp(char *, uintptr_t);
#define	ASSERT(EX)	((void)((EX) || (assfail(#EX, __FILE__, __LINE__), 0)))
#define	DDBG(a, b)	ptms_log(a, b)
#define	DDBGP(a, b)	ptms_logp(a, b)
#else
#define	ASSERT(EX)	((void)0)
#define	DDBG(a, b)
#define	DDBGP(a, b)
#endif

/* ---------------------------------------------------------------------
 * Layout assertions: every size and every offset that ptm, the STREAMS
 * framework or ptms_conf depends on, as the illumos compiler lays them out.
 * bindgen's generated layout tests check the same facts from the Rust side.
 * --------------------------------------------------------------------- */
#define	PTM_ABI_SIZE(t, n) \
	_Static_assert(sizeof (t) == (n), "sizeof " #t)
#define	PTM_ABI_OFF(t, f, n) \
	_Static_assert(__builtin_offsetof(t, f) == (n), #t "." #f)

PTM_ABI_SIZE(short, 2);
PTM_ABI_SIZE(int, 4);
PTM_ABI_SIZE(long, 8);
PTM_ABI_SIZE(void *, 8);
PTM_ABI_SIZE(dev_t, 8);
PTM_ABI_SIZE(minor_t, 4);
PTM_ABI_SIZE(major_t, 4);
PTM_ABI_SIZE(zoneid_t, 4);
PTM_ABI_SIZE(uid_t, 4);
PTM_ABI_SIZE(boolean_t, 4);
PTM_ABI_SIZE(ddi_attach_cmd_t, 4);
PTM_ABI_SIZE(ddi_detach_cmd_t, 4);
PTM_ABI_SIZE(ddi_info_cmd_t, 4);
PTM_ABI_SIZE(kmutex_t, 8);
PTM_ABI_SIZE(kcondvar_t, 2);

PTM_ABI_SIZE(queue_t, 248);
PTM_ABI_OFF(queue_t, q_qinfo, 0);
PTM_ABI_OFF(queue_t, q_first, 8);
PTM_ABI_OFF(queue_t, q_last, 16);
PTM_ABI_OFF(queue_t, q_next, 24);
PTM_ABI_OFF(queue_t, q_link, 32);
PTM_ABI_OFF(queue_t, q_ptr, 40);
PTM_ABI_OFF(queue_t, q_count, 48);
PTM_ABI_OFF(queue_t, q_flag, 56);
PTM_ABI_OFF(queue_t, q_minpsz, 64);
PTM_ABI_OFF(queue_t, q_maxpsz, 72);
PTM_ABI_OFF(queue_t, q_hiwat, 80);
PTM_ABI_OFF(queue_t, q_lowat, 88);
PTM_ABI_OFF(queue_t, q_bandp, 96);
PTM_ABI_OFF(queue_t, q_lock, 104);
PTM_ABI_OFF(queue_t, q_stream, 112);
PTM_ABI_OFF(queue_t, q_syncq, 120);
PTM_ABI_OFF(queue_t, q_nband, 128);
PTM_ABI_OFF(queue_t, q_wait, 130);
PTM_ABI_OFF(queue_t, q_nfsrv, 136);
PTM_ABI_OFF(queue_t, q_draining, 144);
PTM_ABI_OFF(queue_t, q_struiot, 146);
PTM_ABI_OFF(queue_t, q_qtstamp, 152);
PTM_ABI_OFF(queue_t, q_mblkcnt, 160);
PTM_ABI_OFF(queue_t, q_syncqmsgs, 168);
PTM_ABI_OFF(queue_t, q_rwcnt, 176);
PTM_ABI_OFF(queue_t, q_spri, 184);
PTM_ABI_OFF(queue_t, q_sqhead, 192);
PTM_ABI_OFF(queue_t, q_sqtail, 200);
PTM_ABI_OFF(queue_t, q_sqnext, 208);
PTM_ABI_OFF(queue_t, q_sqprev, 216);
PTM_ABI_OFF(queue_t, q_sqflags, 224);
PTM_ABI_OFF(queue_t, q_sqtstamp, 232);
PTM_ABI_OFF(queue_t, q_fp, 240);

PTM_ABI_SIZE(qband_t, 64);
PTM_ABI_OFF(qband_t, qb_next, 0);
PTM_ABI_OFF(qband_t, qb_count, 8);
PTM_ABI_OFF(qband_t, qb_first, 16);
PTM_ABI_OFF(qband_t, qb_last, 24);
PTM_ABI_OFF(qband_t, qb_hiwat, 32);
PTM_ABI_OFF(qband_t, qb_lowat, 40);
PTM_ABI_OFF(qband_t, qb_flag, 48);
PTM_ABI_OFF(qband_t, qb_mblkcnt, 56);

PTM_ABI_SIZE(mblk_t, 64);
PTM_ABI_OFF(mblk_t, b_next, 0);
PTM_ABI_OFF(mblk_t, b_prev, 8);
PTM_ABI_OFF(mblk_t, b_cont, 16);
PTM_ABI_OFF(mblk_t, b_rptr, 24);
PTM_ABI_OFF(mblk_t, b_wptr, 32);
PTM_ABI_OFF(mblk_t, b_datap, 40);
PTM_ABI_OFF(mblk_t, b_band, 48);
PTM_ABI_OFF(mblk_t, b_tag, 49);
PTM_ABI_OFF(mblk_t, b_flag, 50);
PTM_ABI_OFF(mblk_t, b_queue, 56);

PTM_ABI_SIZE(frtn_t, 16);
PTM_ABI_SIZE(dblk_t, 112);
PTM_ABI_OFF(dblk_t, db_frtnp, 0);
PTM_ABI_OFF(dblk_t, db_base, 8);
PTM_ABI_OFF(dblk_t, db_lim, 16);
PTM_ABI_OFF(dblk_t, db_ref, 24);
PTM_ABI_OFF(dblk_t, db_type, 25);
PTM_ABI_OFF(dblk_t, db_flags, 26);
PTM_ABI_OFF(dblk_t, db_struioflag, 27);
PTM_ABI_OFF(dblk_t, db_cpid, 28);
PTM_ABI_OFF(dblk_t, db_cache, 32);
PTM_ABI_OFF(dblk_t, db_mblk, 40);
PTM_ABI_OFF(dblk_t, db_free, 48);
PTM_ABI_OFF(dblk_t, db_lastfree, 56);
PTM_ABI_OFF(dblk_t, db_cksumstart, 64);
PTM_ABI_OFF(dblk_t, db_cksumend, 72);
PTM_ABI_OFF(dblk_t, db_cksumstuff, 80);
PTM_ABI_OFF(dblk_t, db_struioun, 88);
PTM_ABI_OFF(dblk_t, db_fthdr, 96);
PTM_ABI_OFF(dblk_t, db_credp, 104);

PTM_ABI_SIZE(struct qinit, 80);
PTM_ABI_OFF(struct qinit, qi_putp, 0);
PTM_ABI_OFF(struct qinit, qi_srvp, 8);
PTM_ABI_OFF(struct qinit, qi_qopen, 16);
PTM_ABI_OFF(struct qinit, qi_qclose, 24);
PTM_ABI_OFF(struct qinit, qi_qadmin, 32);
PTM_ABI_OFF(struct qinit, qi_minfo, 40);
PTM_ABI_OFF(struct qinit, qi_mstat, 48);
PTM_ABI_OFF(struct qinit, qi_rwp, 56);
PTM_ABI_OFF(struct qinit, qi_infop, 64);
PTM_ABI_OFF(struct qinit, qi_struiot, 72);

PTM_ABI_SIZE(struct module_info, 48);
PTM_ABI_OFF(struct module_info, mi_idnum, 0);
PTM_ABI_OFF(struct module_info, mi_idname, 8);
PTM_ABI_OFF(struct module_info, mi_minpsz, 16);
PTM_ABI_OFF(struct module_info, mi_maxpsz, 24);
PTM_ABI_OFF(struct module_info, mi_hiwat, 32);
PTM_ABI_OFF(struct module_info, mi_lowat, 40);

PTM_ABI_SIZE(struct streamtab, 32);
PTM_ABI_OFF(struct streamtab, st_rdinit, 0);
PTM_ABI_OFF(struct streamtab, st_wrinit, 8);
PTM_ABI_OFF(struct streamtab, st_muxrinit, 16);
PTM_ABI_OFF(struct streamtab, st_muxwinit, 24);

PTM_ABI_SIZE(struct iocblk, 40);
PTM_ABI_OFF(struct iocblk, ioc_cmd, 0);
PTM_ABI_OFF(struct iocblk, ioc_cr, 8);
PTM_ABI_OFF(struct iocblk, ioc_id, 16);
PTM_ABI_OFF(struct iocblk, ioc_flag, 20);
PTM_ABI_OFF(struct iocblk, ioc_count, 24);
PTM_ABI_OFF(struct iocblk, ioc_rval, 32);
PTM_ABI_OFF(struct iocblk, ioc_error, 36);

PTM_ABI_SIZE(struct stroptions, 64);
PTM_ABI_OFF(struct stroptions, so_flags, 0);
PTM_ABI_OFF(struct stroptions, so_readopt, 4);
PTM_ABI_OFF(struct stroptions, so_wroff, 6);
PTM_ABI_OFF(struct stroptions, so_minpsz, 8);
PTM_ABI_OFF(struct stroptions, so_maxpsz, 16);
PTM_ABI_OFF(struct stroptions, so_hiwat, 24);
PTM_ABI_OFF(struct stroptions, so_lowat, 32);
PTM_ABI_OFF(struct stroptions, so_band, 40);
PTM_ABI_OFF(struct stroptions, so_erropt, 42);
PTM_ABI_OFF(struct stroptions, so_maxblk, 48);
PTM_ABI_OFF(struct stroptions, so_copyopt, 56);
PTM_ABI_OFF(struct stroptions, so_tail, 58);

PTM_ABI_SIZE(struct cb_ops, 136);
PTM_ABI_OFF(struct cb_ops, cb_open, 0);
PTM_ABI_OFF(struct cb_ops, cb_close, 8);
PTM_ABI_OFF(struct cb_ops, cb_strategy, 16);
PTM_ABI_OFF(struct cb_ops, cb_print, 24);
PTM_ABI_OFF(struct cb_ops, cb_dump, 32);
PTM_ABI_OFF(struct cb_ops, cb_read, 40);
PTM_ABI_OFF(struct cb_ops, cb_write, 48);
PTM_ABI_OFF(struct cb_ops, cb_ioctl, 56);
PTM_ABI_OFF(struct cb_ops, cb_devmap, 64);
PTM_ABI_OFF(struct cb_ops, cb_mmap, 72);
PTM_ABI_OFF(struct cb_ops, cb_segmap, 80);
PTM_ABI_OFF(struct cb_ops, cb_chpoll, 88);
PTM_ABI_OFF(struct cb_ops, cb_prop_op, 96);
PTM_ABI_OFF(struct cb_ops, cb_str, 104);
PTM_ABI_OFF(struct cb_ops, cb_flag, 112);
PTM_ABI_OFF(struct cb_ops, cb_rev, 116);
PTM_ABI_OFF(struct cb_ops, cb_aread, 120);
PTM_ABI_OFF(struct cb_ops, cb_awrite, 128);

PTM_ABI_SIZE(struct dev_ops, 88);
PTM_ABI_OFF(struct dev_ops, devo_rev, 0);
PTM_ABI_OFF(struct dev_ops, devo_refcnt, 4);
PTM_ABI_OFF(struct dev_ops, devo_getinfo, 8);
PTM_ABI_OFF(struct dev_ops, devo_identify, 16);
PTM_ABI_OFF(struct dev_ops, devo_probe, 24);
PTM_ABI_OFF(struct dev_ops, devo_attach, 32);
PTM_ABI_OFF(struct dev_ops, devo_detach, 40);
PTM_ABI_OFF(struct dev_ops, devo_reset, 48);
PTM_ABI_OFF(struct dev_ops, devo_cb_ops, 56);
PTM_ABI_OFF(struct dev_ops, devo_bus_ops, 64);
PTM_ABI_OFF(struct dev_ops, devo_power, 72);
PTM_ABI_OFF(struct dev_ops, devo_quiesce, 80);

PTM_ABI_SIZE(struct mod_ops, 24);
PTM_ABI_SIZE(struct modldrv, 24);
PTM_ABI_OFF(struct modldrv, drv_modops, 0);
PTM_ABI_OFF(struct modldrv, drv_linkinfo, 8);
PTM_ABI_OFF(struct modldrv, drv_dev_ops, 16);
PTM_ABI_SIZE(struct modlinkage, 64);
PTM_ABI_OFF(struct modlinkage, ml_rev, 0);
PTM_ABI_OFF(struct modlinkage, ml_linkage, 8);
PTM_ABI_SIZE(struct modspecific_info, 36);
PTM_ABI_SIZE(struct modinfo, 432);
PTM_ABI_OFF(struct modinfo, mi_name, 40);
PTM_ABI_OFF(struct modinfo, mi_msinfo, 72);

PTM_ABI_SIZE(struct pt_ttys, 64);
PTM_ABI_OFF(struct pt_ttys, ptm_rdq, 0);
PTM_ABI_OFF(struct pt_ttys, pts_rdq, 8);
PTM_ABI_OFF(struct pt_ttys, pt_nullmsg, 16);
PTM_ABI_OFF(struct pt_ttys, pt_pid, 24);
PTM_ABI_OFF(struct pt_ttys, pt_minor, 28);
PTM_ABI_OFF(struct pt_ttys, pt_refcnt, 32);
PTM_ABI_OFF(struct pt_ttys, pt_state, 36);
PTM_ABI_OFF(struct pt_ttys, pt_cv, 38);
PTM_ABI_OFF(struct pt_ttys, pt_lock, 40);
PTM_ABI_OFF(struct pt_ttys, pt_zoneid, 48);
PTM_ABI_OFF(struct pt_ttys, pt_ruid, 52);
PTM_ABI_OFF(struct pt_ttys, pt_rgid, 56);

PTM_ABI_SIZE(pt_own_t, 8);
PTM_ABI_OFF(pt_own_t, pto_ruid, 0);
PTM_ABI_OFF(pt_own_t, pto_rgid, 4);

#endif /* PTM_ABI_H */
