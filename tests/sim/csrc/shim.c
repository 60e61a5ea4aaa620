/*
 * Variadic kernel entry points for the userland STREAMS simulator.
 *
 * Stable Rust cannot define a C-variadic function, so cmn_err() lives here:
 * it formats the message with the host libc and hands the text to the
 * simulator (ptm_sim_cmn_err, defined in Rust), which records it in the
 * world's trace. A CE_PANIC is recorded as an anomaly by the Rust side.
 */
#include <stdarg.h>
#include <stdio.h>

extern void ptm_sim_cmn_err(int level, const char *text);

void
cmn_err(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(buf, sizeof (buf), fmt, ap);
	va_end(ap);
	ptm_sim_cmn_err(level, buf);
}
