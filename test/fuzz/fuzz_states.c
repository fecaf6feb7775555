/*
 * fuzz_states.c
 *	  Every aggregate-state decoder of state_codec.c on arbitrary bytes; the
 *	  first byte picks the decoder.  A decoded state must be consistent with
 *	  its length and hold only what its aggregate can hold.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "state_codec.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	ar;
	CoreError	err;
	const char *p = (const char *) data + 1;
	size_t		len;
	CoreStatus	st;

	if (size < 1)
		return 0;
	len = size - 1;
	fuzz_arena_init(&ar);
	switch (data[0] % 3)
	{
		case 0:
			{
				ForestFitStateData d;

				st = forest_fit_state_decode(&ar.alloc, p, len, 100000, &d, &err);
				if (st == CORE_OK)
				{
					FUZZ_CHECK(d.nf >= 1 && d.nf <= 100000 && d.n >= 0);
					FUZZ_CHECK(16 + (size_t) d.optlen + (size_t) d.n * (d.nf + 1) * 8 == len);
					for (int64 i = 0; i < d.n; i++)
						FUZZ_CHECK(isfinite(d.y[i]));
				}
				break;
			}
		case 1:
			{
				RocAucStateData d;

				st = roc_auc_state_decode(&ar.alloc, p, len, &d, &err);
				if (st == CORE_OK)
				{
					FUZZ_CHECK(8 + (size_t) d.n * 9 == len);
					for (int64 i = 0; i < d.n; i++)
						FUZZ_CHECK(!isnan(d.scores[i]));
				}
				break;
			}
		default:
			{
				ConfusionStateData d;

				st = confusion_state_decode(&ar.alloc, p, len, &d, &err);
				if (st == CORE_OK)
				{
					FUZZ_CHECK(8 + (size_t) d.n * 24 == len);
					for (int64 i = 0; i < d.n; i++)
						FUZZ_CHECK(d.count[i] >= 1 && isfinite(d.actual[i]) && isfinite(d.predicted[i]));
				}
				break;
			}
	}
	if (st != CORE_OK)
		FUZZ_CHECK(st == CORE_CORRUPT || st == CORE_NOMEM || st == CORE_LIMIT);
	fuzz_arena_reset(&ar);
	return 0;
}
