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
 * allocb: stream.c's definition is renamed kp_illumos_allocb when the
 * kernel is built (stream.c's own calls, e.g. from copyb and mkiocb, go
 * straight to it), so that every other caller -- the drivers, pts, the
 * stream head, the modules -- comes through here, where the world counts
 * the call and may make it fail.
 */
extern mblk_t *kp_illumos_allocb(size_t, uint_t);
extern int kp_allocb_call(void);

mblk_t *
allocb(size_t size, uint_t pri)
{
	if (kp_allocb_call())
		return (NULL);
	return (kp_illumos_allocb(size, pri));
}

/* A message of `type` in `band` with `len` bytes of data, not counted. */
mblk_t *
kp_mkmsg(uchar_t type, uchar_t band, const void *data, size_t len)
{
	mblk_t *mp = kp_illumos_allocb(len, BPRI_HI);

	if (mp == NULL)
		return (NULL);
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

/* The stream head's flags (sd_flag). */
uint_t
kp_stream_flags(vnode_t *vp)
{
	return (vp->v_stream->sd_flag);
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
