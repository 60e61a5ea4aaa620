/*
 * Devices and modules: the driver tables that modconf.c and strsubr.c
 * use, the module control blocks modctl keeps, the STREAMS module switch,
 * device-info nodes, and the clone driver (the project's model: illumos's
 * modctl.c, fmodsw.c, devinfo and clone.c are not in the bundle).
 *
 * - Majors come from a fixed name table (the world's name_to_major).
 *   devopsp[] starts out all &nodev_ops, devnamesp[] and devimpl[] zeroed:
 *   modconf.c's mod_installdrv fills them as on a real system.
 * - A module is loaded as modctl does it: _info first, asked for its
 *   linkage (MI_INFO_LINKAGE), which becomes mod_linkage; then _init, whose
 *   mod_install finds the module again by that linkage (mod_getctl). A
 *   driver is unloaded as moduninstall does: refused while held (open),
 *   else detached, then _fini.
 * - A driver is attached (one instance, a zeroed dev_info) the first time
 *   it is held or attached as a pseudo node; an open holds its driver
 *   (devo_refcnt) until the last close, as specfs does.
 * - The clone driver's open does what illumos's clnopen does: the minor
 *   names the real driver, whose qinit replaces clone's on the queue, and
 *   whose open is called with CLONEOPEN.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/conf.h>
#include <sys/modctl.h>
#include <sys/stream.h>
#include <sys/strsubr.h>
#include <sys/autoconf.h>
#include <sys/ddi.h>
#include <sys/sunddi.h>
#include <sys/ddi_impldefs.h>
#include <sys/kmem.h>
#include <sys/cmn_err.h>
#include <sys/debug.h>
#include <sys/ptms.h>
#include "kp.h"

#define	KP_DEVCNT	64

int devcnt = KP_DEVCNT;
struct dev_ops **devopsp;
struct devnames *devnamesp;

struct cb_ops no_cb_ops = {
	nodev, nodev, nodev, nodev, nodev, nodev, nodev, nodev, nodev,
	nodev, nodev, nochpoll, ddi_prop_op, NULL, D_MP, CB_REV, nodev, nodev
};

struct dev_ops nodev_ops = {
	DEVO_REV, 0, ddi_no_info, nulldev, nulldev, nodev, nodev, nodev,
	&no_cb_ops, NULL, NULL, ddi_quiesce_not_supported
};

/* The world's name_to_major. */
static const struct {
	const char *name;
	major_t major;
} kp_majors[] = {
	{ "clone", KP_CLONE_MAJOR },
	{ "ptm", KP_PTM_MAJOR },
	{ "pts", KP_PTS_MAJOR },
};

major_t
ddi_name_to_major(const char *name)
{
	int i;

	for (i = 0; i < sizeof (kp_majors) / sizeof (kp_majors[0]); i++) {
		if (strcmp(kp_majors[i].name, name) == 0)
			return (kp_majors[i].major);
	}
	return (DDI_MAJOR_T_NONE);
}

/* --- Modules ---------------------------------------------------------------- */

#define	KP_MAXMOD	16
static struct modctl kp_mods[KP_MAXMOD];

modctl_t *
mod_getctl(struct modlinkage *modlp)
{
	int i;

	for (i = 0; i < KP_MAXMOD; i++) {
		if (kp_mods[i].mod_modname != NULL &&
		    kp_mods[i].mod_linkage == modlp)
			return (&kp_mods[i]);
	}
	return (NULL);
}

static struct modctl *
kp_mod_by_name(const char *name)
{
	int i;

	for (i = 0; i < KP_MAXMOD; i++) {
		if (kp_mods[i].mod_modname != NULL &&
		    strcmp(kp_mods[i].mod_modname, name) == 0)
			return (&kp_mods[i]);
	}
	return (NULL);
}

/*
 * Loads module `name` (its entry points already in memory): _info, then
 * _init. Returns _init's result, or the reason the load was refused.
 */
int
kp_mod_load(char *name, int (*info)(struct modinfo *), int (*init)(void))
{
	struct modctl *mp = kp_mod_by_name(name);
	struct modinfo mi;
	int i, rv;

	if (mp != NULL && mp->mod_installed)
		return (EEXIST);
	for (i = 0; mp == NULL && i < KP_MAXMOD; i++) {
		if (kp_mods[i].mod_modname == NULL) {
			mp = &kp_mods[i];
			mp->mod_modname = name;
			mp->mod_id = i + 1;
		}
	}
	if (mp == NULL)
		return (ENOSPC);
	mp->mod_loaded = 1;
	mp->mod_loadcnt++;
	bzero(&mi, sizeof (mi));
	mi.mi_info = MI_INFO_LINKAGE;
	if ((*info)(&mi) == 0 || mi.mi_base == NULL)
		return (EINVAL);
	mp->mod_linkage = (struct modlinkage *)mi.mi_base;
	rv = (*init)();
	if (rv == 0)
		mp->mod_installed = 1;
	return (rv);
}

static dev_info_t *kp_dips[KP_DEVCNT];

/*
 * Unloads module `name`: a driver that is held (open) cannot be detached,
 * so the unload is refused with EBUSY; otherwise it is detached and its
 * _fini decides.
 */
int
kp_mod_unload(char *name, int (*fini)(void))
{
	struct modctl *mp = kp_mod_by_name(name);
	major_t major = ddi_name_to_major(name);
	struct dev_ops *ops;
	int rv;

	if (mp == NULL || !mp->mod_installed)
		return (EINVAL);
	if (major != DDI_MAJOR_T_NONE && kp_dips[major] != NULL) {
		ops = devopsp[major];
		if (ops->devo_refcnt != 0)
			return (EBUSY);
		if ((*ops->devo_detach)(kp_dips[major], DDI_DETACH) !=
		    DDI_SUCCESS)
			return (EBUSY);
		kmem_free(kp_dips[major], sizeof (struct dev_info));
		kp_dips[major] = NULL;
	}
	rv = (*fini)();
	if (rv == 0) {
		mp->mod_installed = 0;
		mp->mod_loaded = 0;
		mp->mod_linkage = NULL;
	}
	return (rv);
}

/* --- Device instances -------------------------------------------------------- */

/*
 * Serialises attaches: the first opens of a driver may come from several
 * threads at once (threaded worlds), and a driver is attached once.
 */
static kmutex_t kp_attach_lock;

static dev_info_t *
kp_attach_locked(major_t major)
{
	struct dev_ops *ops;
	struct dev_info *dip;

	if (kp_dips[major] != NULL)
		return (kp_dips[major]);
	ops = devopsp[major];
	if (ops == &nodev_ops || ops == &mod_nodev_ops)
		return (NULL);
	dip = kmem_zalloc(sizeof (struct dev_info), KM_SLEEP);
	dip->devi_major = major;
	dip->devi_instance = 0;
	dip->devi_node_name = devnamesp[major].dn_name;
	kp_dips[major] = (dev_info_t *)dip;
	if ((*ops->devo_attach)((dev_info_t *)dip, DDI_ATTACH) !=
	    DDI_SUCCESS) {
		kp_dips[major] = NULL;
		kmem_free(dip, sizeof (struct dev_info));
		return (NULL);
	}
	return ((dev_info_t *)dip);
}

static dev_info_t *
kp_attach(major_t major)
{
	dev_info_t *dip;

	if (major >= KP_DEVCNT)
		return (NULL);
	mutex_enter(&kp_attach_lock);
	dip = kp_attach_locked(major);
	mutex_exit(&kp_attach_lock);
	return (dip);
}

/* While set, attaching pts fails (the world's fault injection). */
static boolean_t kp_pts_attach_fails;

dev_info_t *
i_ddi_attach_pseudo_node(char *name)
{
	major_t major = ddi_name_to_major(name);

	if (major == DDI_MAJOR_T_NONE)
		return (NULL);
	if (major == KP_PTS_MAJOR && kp_pts_attach_fails)
		return (NULL);
	return (kp_attach(major));
}

/*
 * Makes attaching pts fail (or work again). pts refuses to detach, so on
 * illumos a failed attach can only be seen before the first manager open
 * after boot; to let any world see it, setting the fault also takes the
 * world back to that state: pts is known to no one as attached (its
 * instance is forgotten and ptms_conf's pts_dip cleared) until the next
 * attach succeeds.
 */
void
kp_fail_pts_attach(boolean_t fail)
{
	extern dev_info_t *pts_dip;
	extern kmutex_t ptms_lock;

	kp_pts_attach_fails = fail;
	if (!fail || kp_dips[KP_PTS_MAJOR] == NULL)
		return;
	mutex_enter(&ptms_lock);
	pts_dip = NULL;
	mutex_exit(&ptms_lock);
	kmem_free(kp_dips[KP_PTS_MAJOR], sizeof (struct dev_info));
	kp_dips[KP_PTS_MAJOR] = NULL;
}

/*
 * A pty's state, zone and owner (as ptms_conf holds them), or -1 if the
 * minor is not allocated.
 */
int
kp_pt_info(minor_t minor, ushort_t *state, zoneid_t *zone, uid_t *uid,
    gid_t *gid)
{
	extern kmutex_t ptms_lock;
	struct pt_ttys *pt;
	int ret = -1;

	mutex_enter(&ptms_lock);
	pt = ptms_minor2ptty(minor);
	if (pt != NULL) {
		*state = pt->pt_state;
		*zone = pt->pt_zoneid;
		*uid = pt->pt_ruid;
		*gid = pt->pt_rgid;
		ret = 0;
	}
	mutex_exit(&ptms_lock);
	return (ret);
}

/*
 * The pt_refcnt of every allocated pty, and whether its pt_lock is held
 * (by any thread: its lock word is not 0), for a stress test's check at a
 * quiescent point. Minors below `limit`; at most `max` entries; returns
 * how many there are.
 */
int
kp_pt_refcnts(minor_t limit, minor_t *minors, int *refcnts, int *held,
    int max)
{
	extern kmutex_t ptms_lock;
	struct pt_ttys *pt;
	minor_t m;
	int n = 0;

	mutex_enter(&ptms_lock);
	for (m = 0; m < limit && n < max; m++) {
		pt = ptms_minor2ptty(m);
		if (pt == NULL)
			continue;
		minors[n] = m;
		refcnts[n] = pt->pt_refcnt;
		held[n] = *(volatile uintptr_t *)&pt->pt_lock != 0;
		n++;
	}
	mutex_exit(&ptms_lock);
	return (n);
}

/* Holds driver `major` for an open (attaching it first), or fails. */
struct dev_ops *
ddi_hold_installed_driver(major_t major)
{
	struct dev_ops *ops;

	if (kp_attach(major) == NULL)
		return (NULL);
	LOCK_DEV_OPS(&devnamesp[major].dn_lock);
	ops = devopsp[major];
	ops->devo_refcnt++;
	UNLOCK_DEV_OPS(&devnamesp[major].dn_lock);
	return (ops);
}

void
ddi_rele_driver(major_t major)
{
	LOCK_DEV_OPS(&devnamesp[major].dn_lock);
	ASSERT(devopsp[major]->devo_refcnt > 0);
	devopsp[major]->devo_refcnt--;
	UNLOCK_DEV_OPS(&devnamesp[major].dn_lock);
}

major_t
ddi_driver_major(dev_info_t *dip)
{
	return (DEVI(dip)->devi_major);
}

dev_info_t *
ddi_hold_devi_by_instance(major_t major, int instance, int flags)
{
	return (instance == 0 ? kp_attach(major) : NULL);
}

void
ddi_release_devi(dev_info_t *dip)
{
}

static struct dev_info kp_rootnex;

dev_info_t *
ddi_root_node(void)
{
	return ((dev_info_t *)&kp_rootnex);
}

/*
 * Minor nodes: the world keeps no /dev tree of its own (devfs is not
 * modelled); creating one succeeds and is remembered for the world's
 * queries.
 */
int
ddi_create_minor_node(dev_info_t *dip, const char *name, int spec_type,
    minor_t minor_num, const char *node_type, int flag)
{
	kp_minor_node_event(1, ddi_driver_major(dip), name, spec_type,
	    minor_num, node_type, flag);
	return (DDI_SUCCESS);
}

void
ddi_remove_minor_node(dev_info_t *dip, const char *name)
{
	kp_minor_node_event(0, ddi_driver_major(dip), name, 0, 0, NULL, 0);
}

/*
 * Properties: only the root node's "ttymodes" exists (ldterm reads it for
 * its default modes); every other lookup finds nothing.
 */
int
ddi_getlongprop(dev_t dev, dev_info_t *dip, int flags, char *name,
    caddr_t valuep, int *lengthp)
{
	size_t len;
	const void *val = kp_property(name, &len);
	void *buf;

	if (val == NULL)
		return (DDI_PROP_NOT_FOUND);
	buf = kmem_alloc(len, KM_SLEEP);
	bcopy(val, buf, len);
	*(void **)valuep = buf;
	*lengthp = (int)len;
	return (DDI_PROP_SUCCESS);
}

int
ddi_prop_op(dev_t dev, dev_info_t *dip, ddi_prop_op_t prop_op, int mod_flags,
    char *name, caddr_t valuep, int *lengthp)
{
	return (DDI_PROP_NOT_FOUND);
}

int
ddi_no_info(dev_info_t *dip, ddi_info_cmd_t infocmd, void *arg, void **result)
{
	return (DDI_FAILURE);
}

int
ddi_quiesce_not_supported(dev_info_t *dip)
{
	return (DDI_FAILURE);
}

/* Unprototyped, as illumos declares them: they fill any ops slot. */
int
nodev()
{
	return (ENXIO);
}

int
nulldev()
{
	return (0);
}

int
nochpoll(dev_t dev, short events, int anyyet, short *reventsp,
    struct pollhead **pollhdrp)
{
	return (ENXIO);
}

void
ddi_assoc_queue_with_devi(queue_t *q, dev_info_t *dip)
{
}

boolean_t
ddi_can_receive_sig(void)
{
	return (B_TRUE);
}

/* --- The STREAMS module switch (I_PUSH looks modules up here) ----------- */

static fmodsw_impl_t *kp_fmodsw;

int
fmodsw_register(const char *name, struct streamtab *str, int flag)
{
	fmodsw_impl_t *fp;
	int err;

	for (fp = kp_fmodsw; fp != NULL; fp = fp->f_next) {
		if (strcmp(fp->f_name, name) == 0)
			return (EEXIST);
	}
	fp = kmem_zalloc(sizeof (*fp), KM_SLEEP);
	(void) strlcpy(fp->f_name, name, sizeof (fp->f_name));
	fp->f_str = str;
	if ((err = devflg_to_qflag(str, flag, &fp->f_qflag,
	    &fp->f_sqtype)) != 0) {
		kmem_free(fp, sizeof (*fp));
		return (err);
	}
	if (fp->f_qflag & (QPERMOD | QMTOUTPERIM))
		fp->f_dmp = hold_dm(str, fp->f_qflag, fp->f_sqtype);
	fp->f_next = kp_fmodsw;
	kp_fmodsw = fp;
	return (0);
}

int
fmodsw_unregister(const char *name)
{
	fmodsw_impl_t **fpp, *fp;

	for (fpp = &kp_fmodsw; (fp = *fpp) != NULL; fpp = &fp->f_next) {
		if (strcmp(fp->f_name, name) != 0)
			continue;
		if (fp->f_ref != 0)
			return (EBUSY);
		*fpp = fp->f_next;
		if (fp->f_dmp != NULL)
			rele_dm(fp->f_dmp);
		kmem_free(fp, sizeof (*fp));
		return (0);
	}
	return (ENXIO);
}

fmodsw_impl_t *
fmodsw_find(const char *name, fmodsw_flags_t flags)
{
	fmodsw_impl_t *fp;

	for (fp = kp_fmodsw; fp != NULL; fp = fp->f_next) {
		if (strcmp(fp->f_name, name) == 0) {
			if (flags & FMODSW_HOLD)
				atomic_inc_32(&fp->f_ref);
			fp->f_hits++;
			return (fp);
		}
	}
	return (NULL);
}

void
fmodsw_rele(fmodsw_impl_t *fp)
{
	ASSERT(fp->f_ref > 0);
	atomic_dec_32(&fp->f_ref);
}

/* --- The clone driver -------------------------------------------------------- */

static int
kp_clnopen(queue_t *rq, dev_t *devp, int flag, int sflag, cred_t *crp)
{
	major_t maj = getminor(*devp);
	struct streamtab *str;
	struct qinit *rinit, *winit;
	cdevsw_impl_t *dp;
	dev_t newdev;
	int error;

	if (sflag)
		return (ENXIO);
	if (maj >= devcnt || ddi_hold_installed_driver(maj) == NULL)
		return (ENXIO);
	if ((str = STREAMSTAB(maj)) == NULL) {
		ddi_rele_driver(maj);
		return (ENXIO);
	}
	newdev = makedevice(maj, 0);
	rinit = rq->q_qinfo;
	winit = WR(rq)->q_qinfo;
	dp = &devimpl[maj];
	if (NEED_DM(dp->d_dmp, dp->d_qflag))
		dp->d_dmp = hold_dm(str, dp->d_qflag, dp->d_sqtype);

	leavesq(rq->q_syncq, SQ_OPENCLOSE);
	setq(rq, str->st_rdinit, str->st_wrinit, dp->d_dmp, dp->d_qflag,
	    dp->d_sqtype, B_FALSE);
	entersq(rq->q_syncq, SQ_OPENCLOSE);

	error = (*rq->q_qinfo->qi_qopen)(rq, &newdev, flag, CLONEOPEN, crp);
	if (error == 0 && getmajor(newdev) != maj) {
		(*rq->q_qinfo->qi_qclose)(rq, flag, crp);
		error = ENXIO;
	}
	if (error == 0) {
		*devp = newdev;
		return (0);
	}
	if (backq(WR(rq)) && backq(WR(rq))->q_next == WR(rq))
		qprocsoff(rq);
	leavesq(rq->q_syncq, SQ_OPENCLOSE);
	rq->q_next = WR(rq)->q_next = NULL;
	rq->q_ptr = WR(rq)->q_ptr = NULL;
	setq(rq, rinit, winit, NULL, QMTSAFE, SQ_CI|SQ_CO, B_FALSE);
	entersq(rq->q_syncq, SQ_OPENCLOSE);
	ddi_rele_driver(maj);
	return (error);
}

static struct module_info kp_clone_minfo = {
	0, "clone", 0, INFPSZ, 0, 0
};
static struct qinit kp_clone_rinit = {
	NULL, NULL, kp_clnopen, NULL, NULL, &kp_clone_minfo, NULL
};
static struct qinit kp_clone_winit = {
	NULL, NULL, NULL, NULL, NULL, &kp_clone_minfo, NULL
};
static struct streamtab kp_clone_tab = {
	&kp_clone_rinit, &kp_clone_winit, NULL, NULL
};
static struct cb_ops kp_clone_cb_ops = {
	nulldev, nulldev, nodev, nodev, nodev, nodev, nodev, nodev, nodev,
	nodev, nodev, nochpoll, ddi_prop_op, &kp_clone_tab, D_MP | D_NEW,
	CB_REV, nodev, nodev
};
static int
kp_cln_attach(dev_info_t *devi, ddi_attach_cmd_t cmd)
{
	return (DDI_SUCCESS);
}
static struct dev_ops kp_clone_ops = {
	DEVO_REV, 0, ddi_no_info, nulldev, nulldev, kp_cln_attach, nodev,
	nodev, &kp_clone_cb_ops, NULL, NULL, ddi_quiesce_not_supported
};

/*
 * Boot: the tables, and the clone driver installed at its major. Called
 * once, before anything else runs.
 */
void
kp_devices_init(void)
{
	int i;

	devopsp = kmem_zalloc(KP_DEVCNT * sizeof (struct dev_ops *), KM_SLEEP);
	devnamesp = kmem_zalloc(KP_DEVCNT * sizeof (struct devnames),
	    KM_SLEEP);
	devimpl = kmem_zalloc(KP_DEVCNT * sizeof (cdevsw_impl_t), KM_SLEEP);
	for (i = 0; i < KP_DEVCNT; i++)
		devopsp[i] = &nodev_ops;
	for (i = 0; i < sizeof (kp_majors) / sizeof (kp_majors[0]); i++)
		devnamesp[kp_majors[i].major].dn_name =
		    (char *)kp_majors[i].name;

	devopsp[KP_CLONE_MAJOR] = &kp_clone_ops;
	devimpl[KP_CLONE_MAJOR].d_str = &kp_clone_tab;
	(void) devflg_to_qflag(&kp_clone_tab, D_MP | D_NEW,
	    &devimpl[KP_CLONE_MAJOR].d_qflag,
	    &devimpl[KP_CLONE_MAJOR].d_sqtype);
	devimpl[KP_CLONE_MAJOR].d_qflag |= QISDRV;
}
