/*
 * Files on devices: what specfs and the system-call layer do before they
 * call into streamio.c (the project's model: specfs, the file table and
 * the system calls are not in the bundle).
 *
 * - One vnode per device number, as specfs keeps one common snode per
 *   device: opening a device whose stream exists reopens that stream. A
 *   clone open always makes a new stream; once the driver has named the
 *   new device, the vnode takes that number (specfs swaps in a vnode for
 *   it, spec_clone), as it does for a driver that clones itself (returns
 *   another minor from a non-clone open).
 * - An open that fails part way through closes its half-made stream, as
 *   spec_open does (STREOPENFAIL).
 * - The open that makes a stream holds the driver until the vnode's last
 *   close, which is the one that calls strclose, as spec_close does.
 * - The vnode table and the open counts are under kp_vfs_lock (threaded
 *   worlds open and close from several threads at once); stropen and
 *   strclose run without it, each open holding its vnode (v_count)
 *   across its stropen. A last close takes the vnode out of the table
 *   before strclose, so a later open of the same device makes a new one.
 * - read, write, putpmsg, ioctl and poll go straight to strread, strwrite,
 *   strputmsg, strioctl and strpoll with the caller's buffers as user
 *   memory (this process's memory is the user address space).
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/file.h>
#include <sys/vnode.h>
#include <sys/uio.h>
#include <sys/stream.h>
#include <sys/stropts.h>
#include <sys/strsubr.h>
#include <sys/conf.h>
#include <sys/cred.h>
#include <sys/kmem.h>
#include <sys/ddi.h>
#include <sys/sunddi.h>
#include <sys/poll.h>
#include <sys/debug.h>
#include <sys/model.h>
#include "kp.h"

#define	KP_MAXVNODE	512
static vnode_t *kp_vnodes[KP_MAXVNODE];
static kmutex_t kp_vfs_lock;

static vnode_t *
kp_vnode_find(dev_t dev)
{
	int i;

	for (i = 0; i < KP_MAXVNODE; i++) {
		if (kp_vnodes[i] != NULL && kp_vnodes[i]->v_rdev == dev)
			return (kp_vnodes[i]);
	}
	return (NULL);
}

static vnode_t *
kp_vnode_new(dev_t dev)
{
	vnode_t *vp;
	int i;

	for (i = 0; i < KP_MAXVNODE && kp_vnodes[i] != NULL; i++)
		;
	if (i == KP_MAXVNODE)
		return (NULL);
	vp = kmem_zalloc(sizeof (vnode_t), KM_SLEEP);
	mutex_init(&vp->v_lock, NULL, MUTEX_DEFAULT, NULL);
	vp->v_type = VCHR;
	vp->v_rdev = dev;
	kp_vnodes[i] = vp;
	return (vp);
}

/* Takes vp out of the table (kp_vfs_lock held). */
static void
kp_vnode_unlist(vnode_t *vp)
{
	int i;

	ASSERT(MUTEX_HELD(&kp_vfs_lock));
	for (i = 0; i < KP_MAXVNODE; i++) {
		if (kp_vnodes[i] == vp)
			kp_vnodes[i] = NULL;
	}
}

/* Frees a vnode already out of the table. */
static void
kp_vnode_free(vnode_t *vp)
{
	mutex_destroy(&vp->v_lock);
	kmem_free(vp, sizeof (vnode_t));
}

/*
 * open(2) of device `dev` with open flags `flag` (FREAD, FWRITE, FNDELAY,
 * FNONBLOCK, FNOCTTY, ...). On success *vpp is the file's vnode and *devp
 * the device it ended up on (the new one, for a clone open).
 */
int
kp_open(dev_t dev, int flag, vnode_t **vpp, dev_t *devp)
{
	major_t maj = getmajor(dev);
	boolean_t clone = (maj == KP_CLONE_MAJOR);

	vnode_t *vp;
	boolean_t fresh, last;
	dev_t newdev = dev;
	int error;

	if (maj >= devcnt || ddi_hold_installed_driver(maj) == NULL)
		return (ENXIO);
	mutex_enter(&kp_vfs_lock);
	vp = clone ? NULL : kp_vnode_find(dev);
	fresh = (vp == NULL);
	if (fresh && (vp = kp_vnode_new(dev)) == NULL) {
		mutex_exit(&kp_vfs_lock);
		ddi_rele_driver(maj);
		return (ENFILE);
	}
	vp->v_count++;		/* this open's hold */
	mutex_exit(&kp_vfs_lock);
	error = stropen(vp, &newdev, flag, CRED());
	if (error != 0) {
		stdata_t *stp = vp->v_stream;

		mutex_enter(&kp_vfs_lock);
		last = (--vp->v_count == 0);
		if (last)
			kp_vnode_unlist(vp);
		mutex_exit(&kp_vfs_lock);
		/*
		 * An open that failed part way through (a module push, say)
		 * leaves its stream marked STREOPENFAIL: specfs closes it then,
		 * unless another open holds it.
		 */
		if (stp != NULL && (stp->sd_flag & STREOPENFAIL)) {
			mutex_enter(&stp->sd_lock);
			stp->sd_flag &= ~STREOPENFAIL;
			mutex_exit(&stp->sd_lock);
			if (last)
				(void) strclose(vp, flag, CRED());
		}
		if (last)
			kp_vnode_free(vp);
		ddi_rele_driver(maj);
		return (error);
	}
	mutex_enter(&kp_vfs_lock);
	if (clone) {
		/* The driver's own hold (clone took it) replaces clone's. */
		ddi_rele_driver(maj);
		maj = getmajor(newdev);
		vp->v_rdev = newdev;
	} else if (newdev != dev) {
		/* A driver that clones itself: the stream is newdev's now. */
		vp->v_rdev = newdev;
	} else if (!fresh) {
		/* A reopen: the stream's first open holds the driver. */
		ddi_rele_driver(maj);
	}
	*vpp = vp;
	*devp = vp->v_rdev;
	mutex_exit(&kp_vfs_lock);
	return (0);
}

/* close(2) of one open of vp. */
int
kp_close(vnode_t *vp, int flag)
{
	major_t maj;
	int error = 0;

	mutex_enter(&kp_vfs_lock);
	maj = getmajor(vp->v_rdev);
	ASSERT(vp->v_count > 0);
	if (--vp->v_count > 0) {
		mutex_exit(&kp_vfs_lock);
		return (0);
	}
	kp_vnode_unlist(vp);
	mutex_exit(&kp_vfs_lock);
	kp_ctty_forget(vp->v_stream);
	error = strclose(vp, flag, CRED());
	kp_vnode_free(vp);
	ddi_rele_driver(maj);
	return (error);
}

static void
kp_uio(struct uio *uio, struct iovec *iov, void *buf, size_t len, int fmode)
{
	bzero(uio, sizeof (*uio));
	iov->iov_base = buf;
	iov->iov_len = len;
	uio->uio_iov = iov;
	uio->uio_iovcnt = 1;
	uio->uio_segflg = UIO_USERSPACE;
	uio->uio_fmode = fmode;
	uio->uio_resid = len;
}

/* read(2): *donep is the number of bytes read. */
int
kp_read(vnode_t *vp, void *buf, size_t len, int fmode, size_t *donep)
{
	struct uio uio;
	struct iovec iov;
	int error;

	kp_uio(&uio, &iov, buf, len, fmode);
	error = strread(vp, &uio, CRED());
	*donep = len - uio.uio_resid;
	return (error);
}

/* write(2): *donep is the number of bytes written. */
int
kp_write(vnode_t *vp, void *buf, size_t len, int fmode, size_t *donep)
{
	struct uio uio;
	struct iovec iov;
	int error;

	kp_uio(&uio, &iov, buf, len, fmode);
	error = strwrite(vp, &uio, CRED());
	*donep = len - uio.uio_resid;
	return (error);
}

/*
 * putpmsg(2) with data only (ctl NULL), in band `band` (MSG_BAND) or as
 * a high-priority message (MSG_HIPRI) when hipri is set.
 */
int
kp_putpmsg(vnode_t *vp, void *ctl, int ctllen, void *data, int datalen,
    int band, int hipri, int fmode)
{
	struct strbuf mctl, mdata;

	mctl.maxlen = ctllen;
	mctl.len = ctl != NULL ? ctllen : -1;
	mctl.buf = ctl;
	mdata.maxlen = datalen;
	mdata.len = data != NULL ? datalen : -1;
	mdata.buf = data;
	return (strputmsg(vp, &mctl, &mdata, (uchar_t)band,
	    hipri ? MSG_HIPRI : MSG_BAND, fmode));
}

/*
 * ioctl(2): `arg` is a user address or value, as the command defines; the
 * file's flags go down with the caller's data model, as the system call
 * passes them.
 */
int
kp_ioctl(vnode_t *vp, int cmd, intptr_t arg, int flag, int *rvalp)
{
	return (strioctl(vp, cmd, arg, flag | get_udatamodel(), U_TO_K, CRED(),
	    rvalp));
}

/* poll(2) without waiting: the events that are true now. */
int
kp_poll(vnode_t *vp, short events, short *reventsp)
{
	struct pollhead *php = NULL;

	return (strpoll(vp->v_stream, events, 0, reventsp, &php));
}

stdata_t *
kp_vnode_stream(vnode_t *vp)
{
	return (vp->v_stream);
}

dev_t
kp_vnode_dev(vnode_t *vp)
{
	return (vp->v_rdev);
}

/* How many streams are open now (vnodes with a stream). */
int
kp_open_streams(void)
{
	int i, n = 0;

	mutex_enter(&kp_vfs_lock);
	for (i = 0; i < KP_MAXVNODE; i++) {
		if (kp_vnodes[i] != NULL && kp_vnodes[i]->v_stream != NULL)
			n++;
	}
	mutex_exit(&kp_vfs_lock);
	return (n);
}


/* How many opens of vp are outstanding. */
int
kp_vnode_count(vnode_t *vp)
{
	return (vp->v_count);
}
