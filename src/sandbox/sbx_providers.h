/* sbx_providers: the provider emulators compiled into signbridge-sandbox. */
#ifndef SBX_PROVIDERS_H
#define SBX_PROVIDERS_H
#include "sandbox/sbx.h"

extern sbx_provider sbx_boldsign;    /* sbx_boldsign.c: regions us, eu, ca, au */
extern sbx_provider sbx_dropboxsign; /* sbx_dropboxsign.c: region global */
extern sbx_provider sbx_iinkedsign;  /* sbx_iinkedsign.c: us, ca, eu, sandbox-us, sandbox-eu, private */

#endif
