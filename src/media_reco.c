/*
 * media_reco.c
 *	  Module magic, _PG_init and the extension's settings.
 */
#include "postgres.h"

#include <cblas.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "mlp_core.h"
#include "pairsums.h"
#include "util.h"

PG_MODULE_MAGIC;

int			media_reco_threads = 2;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * One BLAS thread per backend: the server runs many backends, and BLAS
	 * threads must never compete with them or call back into PostgreSQL.
	 */
	openblas_set_num_threads(1);

	DefineCustomIntVariable("media_reco.threads",
							"Threads used to accumulate item pairs in item_similarity and refresh_neighbors.",
							"Helper threads run pure C over arrays prepared beforehand; 1 disables them.",
							&media_reco_threads,
							2, 1, 64,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("media_reco.explain_steps",
							"Gauss-Legendre nodes of the integrated-gradients path when explain_prediction explains a network.",
							"The default keeps the completeness error below 1e-3 on the networks tested; explain_completeness reports it.",
							&media_reco_explain_steps,
							64, 1, MLP_IG_MAX_STEPS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("media_reco.citus_pair_sums",
							 "Where a refresh's pair sums are computed on a Citus table distributed by user: auto, on (the workers), off (the coordinator).",
							 "On the workers, cosine, jaccard and conditional sum each shard's pairs there and merge them exactly on the coordinator; auto does so when the sums would move fewer bytes than the rows (long histories over a small catalogue); the lists are the same either way.",
							 &media_reco_citus_pair_sums,
							 CITUS_PAIR_SUMS_AUTO, citus_pair_sums_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("media_reco");
}
