#ifndef EMOTIONTAP_CSOXR_SHIM_H
#define EMOTIONTAP_CSOXR_SHIM_H
#include <soxr.h>
#endif
