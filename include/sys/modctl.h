/*
 * <sys/modctl.h> for compiling illumos STREAMS driver sources against the
 * project's ABI description.  Every shim name resolves to the same
 * self-contained header; see ptm_abi.h.
 */
#include <ptm_abi.h>
