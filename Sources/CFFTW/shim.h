#ifndef EMOTIONTAP_CFFTW_SHIM_H
#define EMOTIONTAP_CFFTW_SHIM_H
#include <fftw3.h>

// fftw_version is an incomplete array, invisible to Swift.
static inline const char *et_fftw_version(void) { return fftw_version; }
#endif
