/*
 * pairsums.h
 *	  A refresh over a Citus table distributed by user: the pair sums on the
 *	  workers (the aggregate media_reco.pair_sums), merged on the coordinator.
 */
#ifndef MEDIA_RECO_PAIRSUMS_H
#define MEDIA_RECO_PAIRSUMS_H

#include "postgres.h"

#include "similarity.h"
#include "source.h"

/* media_reco.citus_pair_sums: auto (when the pair sums would move fewer bytes than the rows), on, off */
typedef enum CitusPairSums
{
	CITUS_PAIR_SUMS_AUTO,
	CITUS_PAIR_SUMS_ON,
	CITUS_PAIR_SUMS_OFF
} CitusPairSums;

extern int	media_reco_citus_pair_sums;
extern const struct config_enum_entry citus_pair_sums_options[];

/*
 * Why src and p cannot be refreshed from pushed-down pair sums (a
 * palloc'd sentence), or NULL when they can: a Citus table hash-distributed
 * by the user column, a metric that reads only pair sums, counts and
 * degrees and whose per-user weights a shard can compute (cosine, adjusted
 * cosine, jaccard, conditional), no time decay; and, with the
 * setting at auto, pair sums estimated to move fewer bytes than the rows
 * (an extra pass over the shards: rows, distinct items, Σ_u n_u(n_u - 1)).
 * Callers first check relation_is_citus_table.  SPI must not be connected.
 */
extern char *pairsums_ineligible(const SourceSpec *src, const SimParams *p);

/*
 * Run the aggregate over src (the workers compute their shards' pair sums)
 * and merge the states into lists, all in `work`; *m_out gets the item ids
 * and counts only.  NULL with *why set when the weights do not allow an
 * exact merge (the caller then reads the rows).  Fills stats, the Citus
 * part included.
 */
extern NeighborLists *pairsums_refresh(const SourceSpec *src, const SimParams *p,
									   MemoryContext work, bool read_only,
									   InteractionMatrix **m_out, SimRunStats *stats,
									   char **why);

#endif
