/*
 * The one piece of the kernel layer that is built against the C library
 * rather than illumos's headers, and linked outside the sealed kernel
 * object: message formatting for cmn_err, panic and the printf family.
 */
#include <stdarg.h>
#include <stdio.h>

int kp_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);

int
kp_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
	return (vsnprintf(buf, len, fmt, ap));
}
