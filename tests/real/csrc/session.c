/*
 * Terminal sessions: what the system-call layer and specfs do for a
 * session on a pseudo-terminal that vfs.c leaves out (the project's model:
 * specfs and the getmsg system call are not in the bundle).
 *
 * - The controlling terminal at open: once stropen has succeeded, a
 *   STREAMS tty (the stream head has STRISTTY, which pts, ptem and ldterm
 *   set with M_SETOPTS SO_ISTTY) opened without FNOCTTY is offered to
 *   strctty, as specfs's open does; strctty decides (the caller must lead
 *   a session that has none, the stream must be nobody's).
 * - Letting go of it: when the session leader is done with the terminal,
 *   freectty unbinds it, which illumos does before the stream's last close
 *   (strclose ASSERTs the stream is nobody's ctty any more).
 * - getmsg(2): strgetmsg with the caller's buffers as user memory, any
 *   band or priority (MSG_ANY).
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/file.h>
#include <sys/vnode.h>
#include <sys/stream.h>
#include <sys/stropts.h>
#include <sys/strsubr.h>
#include <sys/proc.h>
#include <sys/session.h>
#include <sys/debug.h>
#include "kp.h"

/*
 * The open of vp (already done by kp_open with `flag`) asks for a
 * controlling terminal: 0 if the stream became the caller's, else the
 * reason strctty gave (or -1 when it was not asked).
 */
int
kp_open_ctty(vnode_t *vp, int flag)
{
	stdata_t *stp = vp->v_stream;

	if (!(stp->sd_flag & STRISTTY) || (flag & FNOCTTY))
		return (-1);
	return (strctty(stp));
}

/*
 * The calling process's session gives up its controlling terminal (its
 * leader is done with it): 0, or EIO when the caller leads no session
 * with one.
 */
int
kp_release_ctty(void)
{
	return (freectty(B_FALSE));
}

/*
 * The session and the foreground process group a stream is the
 * controlling terminal of (0 when it is nobody's).
 */
void
kp_stream_session(vnode_t *vp, pid_t *sidp, pid_t *pgidp)
{
	stdata_t *stp = vp->v_stream;

	mutex_enter(&stp->sd_lock);
	*sidp = stp->sd_sidp != NULL ? stp->sd_sidp->pid_id : 0;
	*pgidp = stp->sd_pgidp != NULL ? stp->sd_pgidp->pid_id : 0;
	mutex_exit(&stp->sd_lock);
}

/* Whether vp's stream is the controlling terminal of some session. */
int
kp_stream_is_ctty(vnode_t *vp)
{
	return (vp->v_stream != NULL && vp->v_stream->sd_sidp != NULL);
}

/*
 * getmsg(2) of at most ctlmax control and datamax data bytes: the lengths
 * received (-1: no such part), the MORECTL/MOREDATA bits, and the message's
 * priority class in *hipri.
 */
int
kp_getmsg(vnode_t *vp, void *ctl, int ctlmax, int *ctllen, void *data,
    int datamax, int *datalen, int *hipri, int fmode, int *morep)
{
	struct strbuf mctl, mdata;
	unsigned char pri = 0;
	int flags = MSG_ANY;
	rval_t rv;
	int error;

	mctl.maxlen = ctlmax;
	mctl.len = 0;
	mctl.buf = ctl;
	mdata.maxlen = datamax;
	mdata.len = 0;
	mdata.buf = data;
	rv.r_vals = 0;
	error = strgetmsg(vp, &mctl, &mdata, &pri, &flags, fmode, &rv);
	*ctllen = mctl.len;
	*datalen = mdata.len;
	*hipri = (flags & MSG_HIPRI) != 0;
	*morep = rv.r_val1;
	return (error);
}
