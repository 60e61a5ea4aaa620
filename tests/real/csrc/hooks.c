/*
 * The world's hooks into the kernel: how it watches stream heads receive
 * messages, counts (and fails) allocb calls, sends messages down a stream
 * the way a stream head does, and reads queues for its observations.
 * These are the only places where the world reaches into illumos's code
 * other than through its interfaces; each says how.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/vnode.h>
#include <sys/stream.h>
#include <sys/strsubr.h>
#include <sys/kmem.h>
#include <sys/sunddi.h>
#include <sys/debug.h>
#include "kp.h"

/*
 * allocb: stream.c's definition is weak in the sealed kernel (its code
 * keeps the name kp_illumos_allocb), so every call reaches this one --
 * the drivers', pts's, the modules', and stream.c's own (putnextctl,
 * copyb, msgpullup, ...) -- where the world may count the call and make it
 * fail. The world is given the frame, to tell from the callers whether the
 * allocation is a driver's or the stream head's own (not counted).
 */
extern mblk_t *kp_illumos_allocb(size_t, uint_t);
extern int kp_allocb_call(const void *frame);

mblk_t *
allocb(size_t size, uint_t pri)
{
	if (kp_allocb_call(__builtin_frame_address(0)))
		return (NULL);
	return (kp_illumos_allocb(size, pri));
}

/*
 * An M_IOCTL for cmd as the stream head makes one (strdoioctl): a block
 * with room for any ioctl message, the caller's credential (not held: the
 * caller outlives the ioctl), the next ioctl id, `count` bytes of payload
 * to follow in b_cont. Not counted as an allocb call.
 */
mblk_t *
kp_mkioctl(int cmd, cred_t *cr, size_t count)
{
	mblk_t *mp = kp_illumos_allocb(sizeof (union ioctypes), BPRI_HI);
	struct iocblk *ioc;

	if (mp == NULL)
		return (NULL);
	bzero(mp->b_rptr, sizeof (union ioctypes));
	mp->b_datap->db_type = M_IOCTL;
	ioc = (struct iocblk *)mp->b_rptr;
	ioc->ioc_cmd = cmd;
	ioc->ioc_cr = cr;
	ioc->ioc_id = getiocseqno();
	ioc->ioc_flag = IOC_NATIVE;
	ioc->ioc_count = count;
	mp->b_wptr += sizeof (struct iocblk);
	return (mp);
}

/* The room in the block illumos's allocb gives `len` bytes (not counted). */
size_t
kp_block_capacity(size_t len)
{
	mblk_t *mp = kp_illumos_allocb(len, BPRI_HI);
	size_t room;

	if (mp == NULL)
		return (0);
	room = mp->b_datap->db_lim - mp->b_rptr;
	freeb(mp);
	return (room);
}

/*
 * What strioctl checks before an I_STR reaches strdoioctl, for an ioctl the
 * world sends down itself (kp_mkioctl): a stream error first (strgeterr,
 * as strioctl's default case asks it), then a hangup (ENXIO).
 */
int
kp_istr_preflight(vnode_t *vp)
{
	stdata_t *stp = vp->v_stream;
	int error = 0;

	mutex_enter(&stp->sd_lock);
	if (stp->sd_flag & (STRDERR|STWRERR|STPLEX))
		error = strgeterr(stp, STRDERR|STWRERR|STPLEX, 0);
	mutex_exit(&stp->sd_lock);
	if (error == 0 && (stp->sd_flag & STRHUP))
		error = ENXIO;
	return (error);
}

/*
 * A message of `type` in `band` with `len` bytes of data, not counted. The
 * rest of its buffer is zero, so that code which reads past a short message
 * (a stream head taking 16 bytes of M_SETOPTS as a whole stroptions) reads
 * the same bytes whatever the buffer held before.
 */
mblk_t *
kp_mkmsg(uchar_t type, uchar_t band, const void *data, size_t len)
{
	mblk_t *mp = kp_illumos_allocb(len, BPRI_HI);

	if (mp == NULL)
		return (NULL);
	bzero(mp->b_datap->db_base,
	    mp->b_datap->db_lim - mp->b_datap->db_base);
	mp->b_datap->db_type = type;
	mp->b_band = band;
	if (len > 0)
		bcopy(data, mp->b_wptr, len);
	mp->b_wptr += len;
	return (mp);
}

/*
 * Messages a stream head receives are traced: boot points strdata's put
 * procedure (illumos's strrput) at kp_traced_strrput, which shows each
 * message to the world and then hands it to strrput unchanged.
 */
extern void kp_head_received(stdata_t *stp, mblk_t *mp);

static int
kp_traced_strrput(queue_t *q, mblk_t *mp)
{
	kp_head_received((stdata_t *)q->q_ptr, mp);
	return (strrput(q, mp));
}

void
kp_trace_install(void)
{
	extern struct qinit strdata;

	strdata.qi_putp = kp_traced_strrput;
}

/* The vnode (and so the device) of a stream. */
vnode_t *
kp_stream_vnode(stdata_t *stp)
{
	return (stp->sd_vnode);
}

/*
 * The stream head's read queue and the write queue of the driver at the
 * bottom of vp's stream.
 */
void
kp_stream_queues(vnode_t *vp, queue_t **headrq, queue_t **drvwq)
{
	stdata_t *stp = vp->v_stream;
	queue_t *q = stp->sd_wrq;

	while (q->q_next != NULL && SAMESTR(q))
		q = q->q_next;
	*headrq = RD(stp->sd_wrq);
	*drvwq = q;
}

/* The stream head's flags (sd_flag), as booleans in the world's order. */
void
kp_head_state(vnode_t *vp, uchar_t out[5])
{
	uint_t f = vp->v_stream->sd_flag;

	out[0] = (f & STRHUP) != 0;
	out[1] = (f & STRISTTY) != 0;
	out[2] = (f & STRXPG4TTY) != 0;
	out[3] = (f & STRDERR) != 0;
	out[4] = (f & STWRERR) != 0;
}

/*
 * Sends msg (type, band, and data blocks already made) down vp's stream
 * from its head, as the stream head's own senders do.
 */
void
kp_send_down(vnode_t *vp, mblk_t *mp)
{
	stdata_t *stp = vp->v_stream;

	stream_willservice(stp);
	putnext(stp->sd_wrq, mp);
	stream_runservice(stp);
}

/*
 * Attaches driver `major` now, as add_drv does (rather than at its first
 * open): 0, or -1 if it does not attach.
 */
int
kp_attach_driver(major_t major)
{
	struct dev_ops *ops = ddi_hold_installed_driver(major);

	if (ops == NULL)
		return (-1);
	ddi_rele_driver(major);
	return (0);
}

/*
 * qenable_locked: strsubr.c's definition is weak in the sealed kernel (its
 * code keeps the name kp_illumos_qenable_locked), so every enabling of a
 * queue reaches this one -- qenable's, putq's, putbq's, insq's and the
 * back-enabling of getq and flushq. Normally it is illumos's. While the
 * world runs services late (kp_late_services, deterministic worlds only:
 * one thread runs kernel code at a time), a queue is marked QENAB with
 * illumos's rules but held on the world's list (linked through q_link,
 * which only run lists use, and a held queue is on none) instead of its
 * stream's run list. kp_late_enable puts it there later.
 */
extern void kp_illumos_qenable_locked(queue_t *);
extern void kp_livelock(const char *module, int readside, dev_t dev,
    unsigned long n);

int kp_late_services;
static queue_t *late_head;
static queue_t *late_tail;
static size_t late_count;
void kp_late_hold_again(queue_t *);

/*
 * A service procedure that keeps enabling its own queue while it runs (a
 * message it puts back and can never take, such as a high-priority one
 * held by flow control: putbq enables the queue for those) makes
 * runservice loop for ever. After KP_SPIN_LIMIT such enables of one queue
 * in a row, with no other queue enabled in between, the world stops with a
 * report naming the queue instead of hanging.
 */
#define	KP_SPIN_LIMIT	100000
int kp_watch_spins;	/* set in deterministic worlds */
static queue_t *spin_q;
static unsigned long spin_n;

static void
kp_spin_check(queue_t *q)
{
	if (!(q->q_flag & QINSERVICE) || q != spin_q) {
		spin_q = (q->q_flag & QINSERVICE) ? q : NULL;
		spin_n = 1;
		return;
	}
	if (++spin_n >= KP_SPIN_LIMIT) {
		vnode_t *vp = STREAM(q)->sd_vnode;

		kp_livelock(q->q_qinfo->qi_minfo->mi_idname,
		    (q->q_flag & QREADR) != 0,
		    vp != NULL ? vp->v_rdev : NODEV, spin_n);
	}
}

void
qenable_locked(queue_t *q)
{
	ASSERT(MUTEX_HELD(QLOCK(q)));
	if (kp_watch_spins)
		kp_spin_check(q);
	/*
	 * A stream being closed is not held: its close waits for its queues'
	 * services (wait_svc), so they run now.
	 */
	if (!kp_late_services || (STREAM(q)->sd_flag & STRCLOSE)) {
		kp_illumos_qenable_locked(q);
		return;
	}
	if (q->q_qinfo->qi_srvp == NULL)
		return;
	if (q->q_flag & (QWCLOSE | QENAB))
		return;
	q->q_flag |= QENAB;
	if (q->q_flag & QINSERVICE)
		return;
	kp_late_hold_again(q);
}

/* How many queues are held. */
size_t
kp_late_count(void)
{
	return (late_count);
}

/*
 * Takes every held queue off the list, in the order they were enabled,
 * into qs[] with its stream in sts[]; the arrays have room for
 * kp_late_count() entries. Returns how many.
 */
size_t
kp_late_take(queue_t **qs, stdata_t **sts, size_t room)
{
	size_t n = 0;
	queue_t *q;

	while ((q = late_head) != NULL && n < room) {
		late_head = q->q_link;
		q->q_link = NULL;
		qs[n] = q;
		sts[n] = STREAM(q);
		n++;
	}
	if (late_head == NULL)
		late_tail = NULL;
	late_count -= n;
	return (n);
}

/*
 * Puts a queue on the world's list of held queues, at the end: when it is
 * first held, and when one taken off is held again.
 */
void
kp_late_hold_again(queue_t *q)
{
	q->q_link = NULL;
	if (late_tail == NULL)
		late_head = q;
	else
		late_tail->q_link = q;
	late_tail = q;
	late_count++;
}

/*
 * Schedules a held queue as illumos would have when it was enabled: its
 * QENAB comes off and illumos's qenable_locked sets it again and puts the
 * queue on its stream's run list, dispatching the stream's service task
 * if none is pending.
 */
void
kp_late_enable(queue_t *q)
{
	mutex_enter(QLOCK(q));
	if (q->q_flag & QENAB) {
		q->q_flag &= ~QENAB;
		kp_illumos_qenable_locked(q);
	}
	mutex_exit(QLOCK(q));
}
