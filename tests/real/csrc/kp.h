/*
 * The project's kernel layer ("kp": kernel in a process), C half.
 *
 * illumos's own code (the STREAMS framework, ptms_conf, pts, ptem, ldterm,
 * ...) runs unmodified above this layer. What a kernel provides beneath it
 * is the project's: this C half for everything that needs illumos's
 * structure layouts (threads, processes, credentials, zones, the device and
 * module tables, vnodes, user copies, string and format routines), the Rust
 * half (src/kernel/) for locks, the scheduler, the clock, kmem and vmem.
 *
 * This header is the interface between the two halves. Functions named
 * kp_* and defined in C are called from Rust; those declared here and
 * defined in Rust are called from C.
 */
#ifndef KP_H
#define KP_H

#include <sys/types.h>
#include <sys/thread.h>
#include <sys/proc.h>
#include <sys/stream.h>

/* --- Defined in Rust (src/kernel/) -------------------------------------- */

/* A kernel panic or failed assertion: reports msg and ends the process. */
extern void kp_fail(const char *msg) __NORETURN;
/* A cmn_err message below CE_PANIC, already formatted. */
extern void kp_cmn_err(int level, const char *msg);
/*
 * Something happened that the world records in its trace: a signal sent
 * (kind: 'p' process, 'g' process group, 't' thread), ...
 */
extern void kp_signal_event(int kind, int id, int sig);
/* A function the world does not provide was called. */
extern void kp_absent(const char *name) __NORETURN;

/* Records that a driver created (add != 0) or removed a minor node. */
extern void kp_minor_node_event(int add, major_t major, const char *name,
    int spec_type, minor_t minor, const char *node_type, int flag);
/* A root-node property's value (NULL: no such property). */
extern const void *kp_property(const char *name, size_t *lenp);

/* --- Defined in C, called from Rust -------------------------------------- */

/* The calling OS thread's kthread_t (NULL before kp_thread_attach). */
extern kthread_t *kp_curthread_get(void);
/*
 * Makes a kthread_t for the calling OS thread, in process p (NULL: the
 * kernel's p0), with its stack's lowest address, and makes it curthread.
 */
extern kthread_t *kp_thread_attach(proc_t *p, uintptr_t stkbase);
/* Forgets the calling thread's kthread_t and frees it. */
extern void kp_thread_detach(void);
/* A kthread_t in process p (NULL: p0) for a thread yet to start... */
extern kthread_t *kp_thread_alloc(proc_t *p);
/* ... which that thread then enters, with its stack's lowest address. */
extern void kp_thread_enter(kthread_t *t, uintptr_t stkbase);
/* When a stream goes away, the session whose ctty it was loses it. */
extern void kp_ctty_forget(struct stdata *stp);

/* The world's majors (its name_to_major). */
#define	KP_CLONE_MAJOR	11
#define	KP_PTM_MAJOR	22
#define	KP_PTS_MAJOR	23

#endif /* KP_H */
