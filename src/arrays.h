/*
 * arrays.h
 *	  Helpers the plain-C cores share: overflow-checked huge arrays.
 */
#ifndef MEDIA_RECO_ARRAYS_H
#define MEDIA_RECO_ARRAYS_H

#include "postgres.h"

#include "compare.h"

/*
 * palloc of count * elem bytes in the current context, huge allocations
 * allowed, the product checked for overflow (54000 on overflow); `zero`
 * clears the memory.  count == 0 gives a valid 1-byte block.
 */
extern void *huge_array(Size count, Size elem, bool zero);

#endif
