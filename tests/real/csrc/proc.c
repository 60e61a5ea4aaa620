/*
 * Threads, processes, sessions and signals, as far as the STREAMS code
 * above needs them (the project's model: illumos's proc/thread/session code
 * is not in the bundle and is tied to the scheduler and /proc).
 *
 * - Every OS thread that runs kernel code has a zeroed kthread_t of its own
 *   (curthread is threadp(), a thread-local pointer), with t_stkbase set to
 *   the real bottom of its stack: putnext() compares its stack use against
 *   it. One cpu_t, cpu0, is every thread's CPU.
 * - Processes: p0 (the kernel's) and the processes the world creates, each
 *   with its own pid; a process may lead a session, and a process group is
 *   named by its leader's pid. A session gets a controlling tty (strctty)
 *   as illumos does: the stream is not hung up or in error, is nobody's
 *   ctty yet, the caller leads its session and the session has none.
 * - Signals are not delivered: each is recorded (kp_signal_event) with
 *   whom it was sent to; the world's trace shows them.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/thread.h>
#include <sys/proc.h>
#include <sys/cpuvar.h>
#include <sys/session.h>
#include <sys/strsubr.h>
#include <sys/signal.h>
#include <sys/kmem.h>
#include <sys/errno.h>
#include <sys/cmn_err.h>
#include <sys/debug.h>
#include "kp.h"

cpu_t cpu0;
struct pid pid0;
sess_t session0;
proc_t p0;
struct plock p0lock;
kmutex_t pidlock;
pid_t maxpid = 999999;

static __thread kthread_t *kp_cur;

kthread_t *
threadp(void)
{
	if (kp_cur == NULL)
		kp_fail("kernel code ran on a thread the world does not know");
	return (kp_cur);
}

kthread_t *
kp_curthread_get(void)
{
	return (kp_cur);
}

struct cpu *
curcpup(void)
{
	return (&cpu0);
}

static void
kp_proc0_init(void)
{
	if (p0.p_pidp != NULL)
		return;
	cpu0.cpu_self = &cpu0;
	pid0.pid_id = 0;
	session0.s_sidp = &pid0;
	session0.s_ref = 1;
	session0.s_dev = NODEV;
	p0.p_pidp = &pid0;
	p0.p_pgidp = &pid0;
	p0.p_sessp = &session0;
	p0.p_cred = kcred;
	p0.p_lockp = &p0lock;
}

kthread_t *
kp_thread_alloc(proc_t *p)
{
	kthread_t *t;

	kp_proc0_init();
	t = kmem_zalloc(sizeof (kthread_t), KM_SLEEP);
	t->t_procp = (p != NULL) ? p : &p0;
	t->t_cred = t->t_procp->p_cred;
	t->t_cpu = &cpu0;
	return (t);
}

void
kp_thread_enter(kthread_t *t, uintptr_t stkbase)
{
	t->t_stkbase = (caddr_t)stkbase;
	t->t_stk = (caddr_t)stkbase;
	kp_cur = t;
}

kthread_t *
kp_thread_attach(proc_t *p, uintptr_t stkbase)
{
	kthread_t *t = kp_thread_alloc(p);

	kp_thread_enter(t, stkbase);
	return (t);
}

void
kp_thread_detach(void)
{
	kthread_t *t = kp_cur;

	if (t == NULL)
		return;
	kp_cur = NULL;
	kmem_free(t, sizeof (kthread_t));
}

/* Runs the calling thread as part of process p (its credential too). */
void
kp_thread_set_proc(proc_t *p)
{
	kthread_t *t = threadp();

	t->t_procp = p;
	t->t_cred = p->p_cred;
}

/* --- Processes ------------------------------------------------------------ */

#define	KP_MAXPROC	16
static proc_t *kp_procs[KP_MAXPROC];

static proc_t *
kp_proc_by_pid(pid_t pid)
{
	int i;

	if (pid == 0)
		return (&p0);
	for (i = 0; i < KP_MAXPROC; i++) {
		if (kp_procs[i] != NULL && kp_procs[i]->p_pidp->pid_id == pid)
			return (kp_procs[i]);
	}
	return (NULL);
}

/*
 * A new process with pid `pid` and credential `cr` (held by the caller
 * for the process), leading a session of its own and a process group of
 * its own.
 */
proc_t *
kp_proc_create(pid_t pid, cred_t *cr)
{
	proc_t *p;
	struct pid *pidp;
	sess_t *sp;
	int i;

	kp_proc0_init();
	for (i = 0; i < KP_MAXPROC && kp_procs[i] != NULL; i++)
		;
	if (i == KP_MAXPROC || kp_proc_by_pid(pid) != NULL)
		return (NULL);
	p = kmem_zalloc(sizeof (proc_t), KM_SLEEP);
	pidp = kmem_zalloc(sizeof (struct pid), KM_SLEEP);
	sp = kmem_zalloc(sizeof (sess_t), KM_SLEEP);
	/* p_lock (job control takes it: straccess) */
	p->p_lockp = kmem_zalloc(sizeof (struct plock), KM_SLEEP);
	pidp->pid_id = pid;
	sp->s_sidp = pidp;
	sp->s_ref = 1;
	sp->s_dev = NODEV;
	p->p_pidp = pidp;
	p->p_pgidp = pidp;
	p->p_sessp = sp;
	p->p_cred = cr;
	kp_procs[i] = p;
	return (p);
}

/* Moves p into the session (and process group) of leader. */
void
kp_proc_join(proc_t *p, proc_t *leader)
{
	p->p_sessp = leader->p_sessp;
	p->p_pgidp = leader->p_pgidp;
}

/* Replaces p's credential (the caller passes one hold to p). */
cred_t *
kp_proc_set_cred(proc_t *p, cred_t *cr)
{
	cred_t *old = p->p_cred;

	p->p_cred = cr;
	return (old);
}

/* The session's controlling tty, if any: its stream head. */
stdata_t *
kp_proc_ctty(proc_t *p)
{
	vnode_t *vp = p->p_sessp->s_vp;

	return (vp != NULL ? vp->v_stream : NULL);
}

/* Forgets p; returns its credential for the caller to release. */
cred_t *
kp_proc_destroy(proc_t *p)
{
	cred_t *cr = p->p_cred;
	int i;

	for (i = 0; i < KP_MAXPROC; i++) {
		if (kp_procs[i] == p)
			kp_procs[i] = NULL;
	}
	if (p->p_sessp->s_sidp == p->p_pidp)
		kmem_free(p->p_sessp, sizeof (sess_t));
	kmem_free(p->p_lockp, sizeof (struct plock));
	kmem_free(p->p_pidp, sizeof (struct pid));
	kmem_free(p, sizeof (proc_t));
	return (cr);
}

proc_t *
prfind(pid_t pid)
{
	ASSERT(MUTEX_HELD(&pidlock));
	return (kp_proc_by_pid(pid));
}

proc_t *
prfind_zone(pid_t pid, zoneid_t zoneid)
{
	return (prfind(pid));
}

proc_t *
pgfind(pid_t pgid)
{
	int i;

	ASSERT(MUTEX_HELD(&pidlock));
	for (i = 0; i < KP_MAXPROC; i++) {
		if (kp_procs[i] != NULL &&
		    kp_procs[i]->p_pgidp->pid_id == pgid)
			return (kp_procs[i]);
	}
	return (NULL);
}

proc_t *
pgfind_zone(pid_t pgid, zoneid_t zoneid)
{
	return (pgfind(pgid));
}

int
pid_rele(struct pid *pidp)
{
	return (0);
}

/* --- Signals: recorded, not delivered ----------------------------------- */

void
pgsignal(struct pid *pidp, int sig)
{
	kp_signal_event('g', pidp->pid_id, sig);
}

void
prsignal(struct pid *pidp, int sig)
{
	kp_signal_event('p', pidp->pid_id, sig);
}

void
sigtoproc(proc_t *p, kthread_t *t, int sig)
{
	kp_signal_event('p', p->p_pidp->pid_id, sig);
}

void
tsignal(kthread_t *t, int sig)
{
	kp_signal_event('p', ttoproc(t)->p_pidp->pid_id, sig);
}

void
sigaddq(proc_t *p, kthread_t *t, k_siginfo_t *infop, int km_flags)
{
	kp_signal_event('p', p->p_pidp->pid_id, infop->si_signo);
}

int
signal_is_blocked(kthread_t *t, int sig)
{
	return (0);
}

/* --- Controlling terminals ------------------------------------------------ */

int
strctty(stdata_t *stp)
{
	proc_t *p = curproc;
	sess_t *sp;
	int error = 0;

	mutex_enter(&stp->sd_lock);
	mutex_enter(&pidlock);
	sp = p->p_sessp;
	if ((stp->sd_flag & (STRHUP|STRDERR|STWRERR|STPLEX)) != 0 ||
	    stp->sd_sidp != NULL || p->p_pidp != sp->s_sidp ||
	    sp->s_vp != NULL) {
		error = ENOTTY;
	} else {
		sp->s_vp = stp->sd_vnode;
		sp->s_dev = stp->sd_vnode->v_rdev;
		stp->sd_flag |= STRISTTY;
		stp->sd_sidp = sp->s_sidp;
		stp->sd_pgidp = sp->s_sidp;
	}
	mutex_exit(&pidlock);
	mutex_exit(&stp->sd_lock);
	return (error);
}

/*
 * Called by the stream head when a ctty is closed or hung up: the session
 * loses it. (illumos also sends SIGHUP to the foreground group here when
 * a session leader gives it up; the world's processes never exit, so only
 * the unbinding is modelled.)
 */
int
freectty(boolean_t at_exit)
{
	proc_t *p = curproc;
	sess_t *sp = p->p_sessp;
	stdata_t *stp;

	if (sp->s_sidp != p->p_pidp || sp->s_vp == NULL)
		return (EIO);
	stp = sp->s_vp->v_stream;
	mutex_enter(&stp->sd_lock);
	mutex_enter(&pidlock);
	sp->s_vp = NULL;
	sp->s_dev = NODEV;
	stp->sd_sidp = NULL;
	stp->sd_pgidp = NULL;
	mutex_exit(&pidlock);
	mutex_exit(&stp->sd_lock);
	return (0);
}

void
ctty_clear_sighuped(void)
{
	curproc->p_sessp->s_sighuped = B_FALSE;
}

/*
 * When a stream that is some session's ctty goes away, the session loses
 * it (illumos: the vnode's last close through specfs).
 */
void
kp_ctty_forget(stdata_t *stp)
{
	int i;

	for (i = 0; i < KP_MAXPROC; i++) {
		proc_t *p = kp_procs[i];

		if (p != NULL && p->p_sessp->s_vp != NULL &&
		    p->p_sessp->s_vp->v_stream == stp) {
			p->p_sessp->s_vp = NULL;
			p->p_sessp->s_dev = NODEV;
		}
	}
}

/* The calling thread's credential (CRED()). */
cred_t *
kp_curcred(void)
{
	return (CRED());
}
