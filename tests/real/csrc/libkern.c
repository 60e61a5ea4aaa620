/*
 * The kernel's small library and constants: strings, formatted messages
 * (cmn_err, panic, printf), atomics, user copies and uio moves, the
 * machine's parameters, and the subsystems this world has none of but
 * whose "nothing here" answers the STREAMS code relies on (no autopush
 * configuration, no kstats, auditing off, ...). The project's code: the
 * kernel's own versions live outside the bundle.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/sysmacros.h>
#include <sys/errno.h>
#include <sys/cmn_err.h>
#include <sys/atomic.h>
#include <sys/uio.h>
#include <sys/model.h>
#include <sys/cpuvar.h>
#include <sys/disp.h>
#include <sys/time.h>
#include <sys/kstat.h>
#include <sys/callb.h>
#include <sys/ontrap.h>
#include <sys/strsubr.h>
#include <sys/netstack.h>
#include <sys/sad.h>
#include <sys/dld.h>
#include <sys/poll.h>
#include <sys/policy.h>
#include <sys/ddi.h>
#include <sys/sunddi.h>
#include <sys/strlog.h>
#include <sys/ftrace.h>
#include <sys/vmsystm.h>
#include <vm/as.h>
#include <c2/audit.h>
#include "kp.h"

/* --- The machine ------------------------------------------------------------ */

int hz = 100;
int tick_per_msec = 0;
int msec_per_tick = 10;
int usec_per_tick = 10000;
const int _ncpu = 1;
int ncpus_online = 1;
int max_ncpus = 1;
int boot_max_ncpus = -1;
const unsigned long _pagesize = 4096;
const unsigned int _pageshift = 12;
const unsigned long _pageoffset = 4095;
pri_t kpreemptpri = 100;
char *volatile panicstr = NULL;
volatile int quiesce_active = 0;
int kmem_ready = 1;
struct as kas;
kcondvar_t lbolt_cv;
kcondvar_t memavail_cv;
kmutex_t tod_lock;

/* STREAMS tunables at their illumos defaults. */
ssize_t strmsgsz = 0x10000;
ssize_t strctlsz = 1024;
int nstrpush = 9;

/* Wall-clock time: the world's clock (see gethrtime) since the epoch. */
timestruc_t
tod_get(void)
{
	timestruc_t ts;
	hrtime_t now = gethrtime();

	ts.tv_sec = now / NANOSEC;
	ts.tv_nsec = now % NANOSEC;
	return (ts);
}

time_t
gethrestime_sec(void)
{
	return (gethrtime() / NANOSEC);
}

/* --- Memory: kept by the Rust half, which records each caller ---------- */

extern void *kp_kmem_alloc(size_t, int, int, const void *);
extern void kp_kmem_free(void *, size_t);

void *
kmem_alloc(size_t size, int flags)
{
	return (kp_kmem_alloc(size, flags, 0, __builtin_return_address(0)));
}

void *
kmem_zalloc(size_t size, int flags)
{
	return (kp_kmem_alloc(size, flags, 1, __builtin_return_address(0)));
}

void
kmem_free(void *buf, size_t size)
{
	kp_kmem_free(buf, size);
}

/* --- Messages ------------------------------------------------------------------ */

/*
 * The formatting itself is the C library's (csrc/host.c, outside the
 * sealed kernel), whose conversions are those the kernel's callers use.
 */
extern int kp_vsnprintf(char *, size_t, const char *, __va_list);

size_t
vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
	return ((size_t)kp_vsnprintf(buf, len, fmt, ap));
}

size_t
snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return (n);
}

char *
sprintf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(buf, INT_MAX, fmt, ap);
	va_end(ap);
	return (buf);
}

void
vcmn_err(int level, const char *fmt, va_list ap)
{
	char msg[512];

	(void) vsnprintf(msg, sizeof (msg), fmt, ap);
	if (level == CE_PANIC)
		kp_fail(msg);
	kp_cmn_err(level, msg);
}

void
cmn_err(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcmn_err(level, fmt, ap);
	va_end(ap);
}

void
vprintf(const char *fmt, va_list ap)
{
	vcmn_err(CE_CONT, fmt, ap);
}

void
printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcmn_err(CE_CONT, fmt, ap);
	va_end(ap);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcmn_err(CE_PANIC, fmt, ap);
	va_end(ap);
	kp_fail("panic returned");
}

int
strlog(short mid, short sid, char level, unsigned short flags, char *fmt, ...)
{
	return (0);
}

/* DEBUG kernels' ftrace ring: not kept. */
void
ftrace_1(char *fmt, ulong_t arg1, caddr_t caller)
{
}

/* --- Strings ------------------------------------------------------------------- */

/*
 * The compiler emits calls to these for structure copies; the kernel has
 * its own. Byte loops, kept from being turned back into calls to
 * themselves.
 */
#define	KP_NO_IDIOMS \
	__attribute__((optimize("no-tree-loop-distribute-patterns")))

KP_NO_IDIOMS void *
memmove(void *to, const void *from, size_t n)
{
	uchar_t *d = to;
	const uchar_t *s = from;

	if (d < s) {
		while (n-- > 0)
			*d++ = *s++;
	} else {
		while (n-- > 0)
			d[n] = s[n];
	}
	return (to);
}

KP_NO_IDIOMS void *
memcpy(void *to, const void *from, size_t n)
{
	return (memmove(to, from, n));
}

KP_NO_IDIOMS void *
memset(void *p, int c, size_t n)
{
	uchar_t *d = p;

	while (n-- > 0)
		*d++ = (uchar_t)c;
	return (p);
}

KP_NO_IDIOMS int
memcmp(const void *a, const void *b, size_t n)
{
	const uchar_t *x = a, *y = b;

	for (; n > 0; x++, y++, n--) {
		if (*x != *y)
			return (*x - *y);
	}
	return (0);
}

/*
 * The same four under names the world's module loader can bind to (the
 * names themselves are made local, being libc's too).
 */
extern void *kp_k_memmove(void *, const void *, size_t)
    __attribute__((alias("memmove")));
extern void *kp_k_memcpy(void *, const void *, size_t)
    __attribute__((alias("memcpy")));
extern void *kp_k_memset(void *, int, size_t) __attribute__((alias("memset")));
extern int kp_k_memcmp(const void *, const void *, size_t)
    __attribute__((alias("memcmp"), pure));

void
bcopy(const void *from, void *to, size_t n)
{
	(void) memmove(to, from, n);
}

void
bzero(void *p, size_t n)
{
	(void) memset(p, 0, n);
}

size_t
strlen(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0')
		n++;
	return (n);
}

int
strncmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; a++, b++, n--) {
		if (*a != *b)
			return ((unsigned char)*a - (unsigned char)*b);
		if (*a == '\0')
			break;
	}
	return (0);
}

int
strcmp(const char *a, const char *b)
{
	return (strncmp(a, b, (size_t)-1));
}

char *
strncpy(char *to, const char *from, size_t n)
{
	size_t i;

	for (i = 0; i < n && from[i] != '\0'; i++)
		to[i] = from[i];
	for (; i < n; i++)
		to[i] = '\0';
	return (to);
}

char *
strcpy(char *to, const char *from)
{
	size_t i;

	for (i = 0; (to[i] = from[i]) != '\0'; i++)
		;
	return (to);
}

size_t
strlcpy(char *to, const char *from, size_t len)
{
	size_t n = strlen(from);

	if (len != 0) {
		size_t c = n < len - 1 ? n : len - 1;

		bcopy(from, to, c);
		to[c] = '\0';
	}
	return (n);
}

size_t
strlcat(char *to, const char *from, size_t len)
{
	size_t have = strlen(to);

	if (have >= len)
		return (have + strlen(from));
	return (have + strlcpy(to + have, from, len - have));
}

/* --- Atomics and bits --------------------------------------------------------- */

uint32_t
atomic_add_32_nv(volatile uint32_t *p, int32_t d)
{
	return (__atomic_add_fetch(p, d, __ATOMIC_SEQ_CST));
}

void
atomic_inc_32(volatile uint32_t *p)
{
	(void) __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

void
atomic_dec_32(volatile uint32_t *p)
{
	(void) __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST);
}

uint32_t
atomic_cas_32(volatile uint32_t *p, uint32_t cmp, uint32_t new)
{
	(void) __atomic_compare_exchange_n(p, &cmp, new, 0, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST);
	return (cmp);
}

void *
atomic_cas_ptr(volatile void *p, void *cmp, void *new)
{
	(void) __atomic_compare_exchange_n((void *volatile *)p, &cmp, new, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return (cmp);
}

void
membar_producer(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int
highbit(ulong_t i)
{
	return (i == 0 ? 0 : 64 - __builtin_clzl(i));
}

/*
 * UTF-8: the payload bits of a leading byte, indexed by the number of
 * continuation bytes that follow it (ldterm uses it to decode characters).
 */
const uchar_t u8_masks_tbl[6] = { 0x00, 0x1f, 0x0f, 0x07, 0x03, 0x01 };

/* --- Stacks and traps ------------------------------------------------------------ */

/* Frame pointers are kept in everything compiled here. */
#pragma GCC diagnostic ignored "-Wframe-address"

greg_t
getfp(void)
{
	return ((greg_t)__builtin_frame_address(1));
}

caddr_t
caller(void)
{
	return ((caddr_t)__builtin_return_address(1));
}

int
getpcstack(pc_t *pcstack, int depth)
{
	return (0);
}

/* No code here expects a trap: on_trap protection is never triggered. */
int
on_trap(on_trap_data_t *otp, uint_t prot)
{
	bzero(otp, sizeof (*otp));
	otp->ot_prot = prot;
	return (0);
}

void
no_trap(void)
{
}

/* --- User memory: this process's own memory --------------------------- */

int
copyin(const void *uaddr, void *kaddr, size_t n)
{
	bcopy(uaddr, kaddr, n);
	return (0);
}

int
copyout(const void *kaddr, void *uaddr, size_t n)
{
	bcopy(kaddr, uaddr, n);
	return (0);
}

int
copystr(const char *from, char *to, size_t max, size_t *copied)
{
	size_t i;

	for (i = 0; i < max; i++) {
		if ((to[i] = from[i]) == '\0') {
			if (copied != NULL)
				*copied = i + 1;
			return (0);
		}
	}
	if (copied != NULL)
		*copied = max;
	return (ENAMETOOLONG);
}

int
copyinstr(const char *uaddr, char *kaddr, size_t max, size_t *copied)
{
	return (copystr(uaddr, kaddr, max, copied));
}

model_t
get_udatamodel(void)
{
	return (DATAMODEL_NATIVE);
}

uint_t
ddi_model_convert_from(model_t model)
{
	return (DDI_MODEL_NONE);
}

/*
 * Moves up to n bytes between p and the space uio describes, in direction
 * rw (UIO_READ: to the uio), advancing the uio past what was moved.
 */
int
uiomove(void *p, size_t n, enum uio_rw rw, struct uio *uio)
{
	caddr_t cp = p;

	while (n > 0 && uio->uio_resid > 0) {
		struct iovec *iov = uio->uio_iov;
		size_t cnt = MIN(iov->iov_len, n);

		if (cnt == 0) {
			uio->uio_iov++;
			uio->uio_iovcnt--;
			continue;
		}
		if (rw == UIO_READ)
			bcopy(cp, iov->iov_base, cnt);
		else
			bcopy(iov->iov_base, cp, cnt);
		iov->iov_base += cnt;
		iov->iov_len -= cnt;
		uio->uio_resid -= cnt;
		uio->uio_loffset += cnt;
		cp += cnt;
		n -= cnt;
	}
	return (0);
}

/* Advances uio by n bytes without moving anything. */
void
uioskip(uio_t *uio, size_t n)
{
	while (n > 0 && uio->uio_resid > 0) {
		struct iovec *iov = uio->uio_iov;
		size_t cnt = MIN(iov->iov_len, n);

		if (cnt == 0) {
			uio->uio_iov++;
			uio->uio_iovcnt--;
			continue;
		}
		iov->iov_base += cnt;
		iov->iov_len -= cnt;
		uio->uio_resid -= cnt;
		uio->uio_loffset += cnt;
		n -= cnt;
	}
}

/* Copies uio and its iovecs into duio and diov (at most diov_cnt). */
int
uiodup(uio_t *suio, uio_t *duio, iovec_t *diov, int diov_cnt)
{
	int i;

	if (suio->uio_iovcnt > diov_cnt)
		return (EINVAL);
	*duio = *suio;
	for (i = 0; i < suio->uio_iovcnt; i++)
		diov[i] = suio->uio_iov[i];
	duio->uio_iov = diov;
	return (0);
}

/* --- What this world has none of ------------------------------------------ */

/* No autopush configuration: one (empty) STREAMS stack for every zone. */
static str_stack_t kp_str_stack;
static netstack_t kp_netstack;

static netstack_t *
kp_ns(void)
{
	kp_netstack.netstack_str = &kp_str_stack;
	kp_str_stack.ss_netstack = &kp_netstack;
	return (&kp_netstack);
}

netstack_t *
netstack_find_by_stackid(netstackid_t id)
{
	return (kp_ns());
}

netstack_t *
netstack_find_by_cred(const cred_t *cr)
{
	return (kp_ns());
}

void
netstack_rele(netstack_t *ns)
{
}

void
netstack_register(int moduleid, void *(*create)(netstackid_t, netstack_t *),
    void (*shutdown)(netstackid_t, void *),
    void (*destroy)(netstackid_t, void *))
{
}

netstackid_t
zoneid_to_netstackid(zoneid_t zoneid)
{
	return (0);
}

zoneid_t
netstackid_to_zoneid(netstackid_t id)
{
	return (GLOBAL_ZONEID);
}

struct autopush *
sad_ap_find_by_dev(dev_t dev, str_stack_t *ss)
{
	return (NULL);
}

void
sad_initspace(str_stack_t *ss)
{
}

void
sad_freespace(str_stack_t *ss)
{
}

/* Not a network device: no datalink autopush. */
int
dld_autopush(dev_t *devp, struct dlautopush *dlap)
{
	return (-1);
}

void
tpi_init(void)
{
}

kstat_t *
kstat_create(const char *module, int instance, const char *name,
    const char *class, uchar_t type, uint_t ndata, uchar_t flags)
{
	return (NULL);
}

callb_id_t
callb_add(boolean_t (*func)(void *, int), void *arg, int class, char *name)
{
	return ((callb_id_t)1);
}

/* Auditing is off. */
uint32_t
audit_getstate(void)
{
	return (0);
}

/* No poll(2) sleeps on a stream: the world only asks what is true now. */
void
pollwakeup(pollhead_t *php, short event)
{
}

void
pollhead_clean(pollhead_t *php)
{
}

int
polllock(pollhead_t *php, kmutex_t *lp)
{
	mutex_enter(lp);
	return (0);
}
