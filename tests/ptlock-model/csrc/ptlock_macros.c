/*
 * ptlock_macros.c -- the reference-count lock macros of include/ptm_abi.h
 * (PT_ENTER_READ, PT_EXIT_READ, PT_ENTER_WRITE, PT_EXIT_WRITE), each
 * expanded once in a function the Rust model checker calls, so that the C
 * macros run under exactly the same scenarios, kernel model and checks as
 * the driver's Rust guards.
 *
 * Built by build.rs with -D_KERNEL -DDEBUG -ffreestanding -nostdinc: DEBUG
 * makes the macros' ASSERTs call assfail(), which the kernel model records
 * as a violation.  mutex_enter, mutex_exit, cv_wait, cv_broadcast and
 * assfail are the kernel model's (src/kernel.rs).
 */
#include "ptm_abi.h"

void model_enter_read(struct pt_ttys *);
void model_exit_read(struct pt_ttys *);
void model_enter_write(struct pt_ttys *);
void model_exit_write(struct pt_ttys *);

void
model_enter_read(struct pt_ttys *p)
{
	PT_ENTER_READ(p);
}

void
model_exit_read(struct pt_ttys *p)
{
	PT_EXIT_READ(p);
}

void
model_enter_write(struct pt_ttys *p)
{
	PT_ENTER_WRITE(p);
}

void
model_exit_write(struct pt_ttys *p)
{
	PT_EXIT_WRITE(p);
}
