/*
 * synth.c
 *	  A reproducible synthetic media catalogue and viewing log.
 *
 * The demo, the tests and the benchmarks all need realistic interaction data
 * without shipping any (the public datasets forbid redistribution).  The
 * model: items belong to genres (unevenly: many dramas, few westerns) and
 * have a Zipf-like popularity (weight 1/rank over a seeded random ranking,
 * so popular items are not simply the small ids); users have heavy-tailed
 * activity (Pareto, capped) and one to three favourite genres; each view
 * comes from a favourite genre with probability 0.8, otherwise from the
 * whole catalogue, by popularity.  Repeat views happen, as in real logs.
 * Everything derives from pg_prng with the given seed: same arguments, same
 * rows.
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compare.h"
#include "util.h"

PG_FUNCTION_INFO_V1(synthetic_items);
PG_FUNCTION_INFO_V1(synthetic_interactions);

#define N_GENRES 16
#define MAX_SYNTH_ITEMS 10000000
#define MAX_SYNTH_USERS 50000000
#define MAX_SYNTH_ROWS INT64CONST(2000000000)

static const char *const genre_names[N_GENRES] = {
	"Drama", "Comedy", "Action", "Thriller", "Documentary", "Animation",
	"Crime", "Romance", "Sci-Fi", "Horror", "Family", "Fantasy",
	"Music", "Sports", "News", "Western"
};
static const double genre_share[N_GENRES] = {
	18, 15, 10, 9, 8, 7, 6, 6, 5, 4, 3, 3, 2, 2, 1, 1
};

static const char *const title_adj[] = {
	"Silent", "Last", "Hidden", "Broken", "Golden", "Midnight", "Lost", "Northern",
	"Electric", "Wild", "Crimson", "Endless", "Secret", "Frozen", "Distant", "Little"
};
static const char *const title_noun[] = {
	"River", "Empire", "Garden", "Signal", "Harbor", "Kingdom", "Station", "Voyage",
	"Promise", "Island", "Machine", "Summer", "Witness", "Frontier", "Orchestra", "Horizon"
};

typedef struct Catalogue
{
	int32		n_items;
	uint8	   *genre;			/* [n_items] */
	int32	   *rank;			/* [n_items] popularity rank, 1 = most popular */
	double		genre_cdf[N_GENRES];	/* cumulative genre shares */
	double	   *cum_all;		/* [n_items] cumulative popularity */
	int32	   *genre_items[N_GENRES];	/* item indexes of each genre */
	double	   *genre_cum[N_GENRES];
	int32		genre_n[N_GENRES];
} Catalogue;

static void
CheckRange(int64 v, int64 lo, int64 hi, const char *what)
{
	if (v < lo || v > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between " INT64_FORMAT " and " INT64_FORMAT ", got " INT64_FORMAT,
						what, lo, hi, v)));
}

static int32
SampleCum(const double *cum, int32 n, double u)
{
	int32		lo = 0,
				hi = n - 1;
	double		target = u * cum[n - 1];

	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (cum[mid] > target)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void
BuildCatalogue(Catalogue *c, int32 n, uint64 seed)
{
	pg_prng_state st;
	int32	   *perm;
	double		acc = 0;

	c->n_items = n;
	c->genre = palloc_extended(n, MCXT_ALLOC_HUGE);
	c->rank = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	c->cum_all = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	pg_prng_seed(&st, seed ^ UINT64CONST(0x6d656469615f7265));

	for (int g = 0; g < N_GENRES; g++)
	{
		acc += genre_share[g];
		c->genre_cdf[g] = acc;
	}
	memset(c->genre_n, 0, sizeof(c->genre_n));
	for (int32 i = 0; i < n; i++)
	{
		c->genre[i] = (uint8) SampleCum(c->genre_cdf, N_GENRES, pg_prng_double(&st));
		c->genre_n[c->genre[i]]++;
	}

	/* seeded random popularity ranking */
	perm = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	for (int32 i = 0; i < n; i++)
		perm[i] = i;
	shuffle_int32(&st, perm, n);
	for (int32 r = 0; r < n; r++)
		c->rank[perm[r]] = r + 1;
	pfree(perm);

	for (int g = 0; g < N_GENRES; g++)
	{
		c->genre_items[g] = palloc_extended(sizeof(int32) * Max(c->genre_n[g], 1), MCXT_ALLOC_HUGE);
		c->genre_cum[g] = palloc_extended(sizeof(double) * Max(c->genre_n[g], 1), MCXT_ALLOC_HUGE);
		c->genre_n[g] = 0;
	}
	acc = 0;
	for (int32 i = 0; i < n; i++)
	{
		double		w = 1.0 / (double) c->rank[i];
		int			g = c->genre[i];
		int32		pos = c->genre_n[g]++;

		acc += w;
		c->cum_all[i] = acc;
		c->genre_items[g][pos] = i;
		c->genre_cum[g][pos] = (pos > 0 ? c->genre_cum[g][pos - 1] : 0) + w;
	}
}

/*
 * synthetic_items(items, seed): the catalogue as rows (item_id, title, genre,
 * popularity_rank); the same arguments give the same rows on every platform.
 */
Datum
synthetic_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Catalogue	c;
	int32		n;

	check_not_null(fcinfo, 0, "items");
	check_not_null(fcinfo, 1, "seed");
	n = PG_GETARG_INT32(0);
	CheckRange(n, 1, MAX_SYNTH_ITEMS, "items");
	InitMaterializedSRF(fcinfo, 0);
	BuildCatalogue(&c, n, (uint64) PG_GETARG_INT64(1));

	for (int32 i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		char		title[96];
		uint32		h = (uint32) (i * 2654435761u);

		snprintf(title, sizeof(title), "The %s %s %d", title_adj[h % 16],
				 title_noun[(h >> 8) % 16], i + 1);
		values[0] = Int64GetDatum((int64) i + 1);
		values[1] = CStringGetTextDatum(title);
		values[2] = CStringGetTextDatum(genre_names[c.genre[i]]);
		values[3] = Int32GetDatum(c.rank[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return (Datum) 0;
}

/*
 * synthetic_interactions(users, items, interactions, seed): the viewing log
 * as rows (user_id, item_id, plays, rating, watched_at) drawn as the header
 * describes; deterministic for the arguments (tests depend on the draws).
 */
Datum
synthetic_interactions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Catalogue	c;
	int32		n_users,
				n_items;
	int64		n_rows;
	uint64		seed;
	double	   *ucum;
	double		acc = 0,
				mean,
				cap;
	pg_prng_state st;
	/* 2025-01-01 00:00:00 UTC in PostgreSQL's microseconds since 2000-01-01 */
	const int64 base_ts = INT64CONST(9132) * USECS_PER_DAY;

	for (int i = 0; i < 4; i++)
		check_not_null(fcinfo, i, i == 0 ? "users" : i == 1 ? "items" : i == 2 ? "interactions" : "seed");
	n_users = PG_GETARG_INT32(0);
	n_items = PG_GETARG_INT32(1);
	n_rows = PG_GETARG_INT64(2);
	seed = (uint64) PG_GETARG_INT64(3);
	CheckRange(n_users, 1, MAX_SYNTH_USERS, "users");
	CheckRange(n_items, 1, MAX_SYNTH_ITEMS, "items");
	CheckRange(n_rows, 0, MAX_SYNTH_ROWS, "interactions");

	InitMaterializedSRF(fcinfo, 0);
	BuildCatalogue(&c, n_items, seed);

	/* heavy-tailed activity: Pareto(alpha = 1.5), capped at 50x the mean */
	pg_prng_seed(&st, seed ^ UINT64CONST(0x75736572735f5f5f));
	ucum = palloc_extended(sizeof(double) * n_users, MCXT_ALLOC_HUGE);
	mean = 3.0;					/* mean of Pareto(1.5) with x_min 1 */
	cap = 50.0 * mean;
	for (int32 u = 0; u < n_users; u++)
	{
		double		x = pow(1.0 - pg_prng_double(&st), -1.0 / 1.5);

		acc += Min(x, cap);
		ucum[u] = acc;
	}

	pg_prng_seed(&st, seed ^ UINT64CONST(0x766965775f6c6f67));
	for (int64 r = 0; r < n_rows; r++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int32		u = SampleCum(ucum, n_users, pg_prng_double(&st));
		pg_prng_state us;
		int			nfav,
					fav[3];
		int32		item;
		bool		in_fav = false;
		double		rating;
		int			plays = 1;

		/* the user's tastes are a function of (seed, user) alone */
		pg_prng_seed(&us, seed * UINT64CONST(0x9E3779B97F4A7C15) + (uint64) u + 1);
		nfav = 1 + (int) pg_prng_uint64_range(&us, 0, 2);
		for (int f = 0; f < nfav; f++)
			fav[f] = SampleCum(c.genre_cdf, N_GENRES, pg_prng_double(&us));

		if (pg_prng_double(&st) < 0.8)
		{
			int			g = fav[pg_prng_uint64_range(&st, 0, nfav - 1)];

			if (c.genre_n[g] > 0)
			{
				item = c.genre_items[g][SampleCum(c.genre_cum[g], c.genre_n[g], pg_prng_double(&st))];
				in_fav = true;
			}
			else
				item = SampleCum(c.cum_all, n_items, pg_prng_double(&st));
		}
		else
			item = SampleCum(c.cum_all, n_items, pg_prng_double(&st));
		for (int f = 0; f < nfav && !in_fav; f++)
			in_fav = (c.genre[item] == fav[f]);

		while (plays < 20 && pg_prng_double(&st) < 0.35)
			plays++;
		rating = (in_fav ? 3.8 : 2.9) + 1.1 * (pg_prng_double(&st) + pg_prng_double(&st) - 1.0)
			+ (c.rank[item] <= n_items / 20 ? 0.4 : 0.0);
		rating = Max(1.0, Min(5.0, rint(rating)));

		values[0] = Int64GetDatum((int64) u + 1);
		values[1] = Int64GetDatum((int64) item + 1);
		values[2] = Int32GetDatum(plays);
		values[3] = Float4GetDatum((float4) rating);
		values[4] = TimestampTzGetDatum(base_ts +
										(int64) pg_prng_uint64_range(&st, 0, INT64CONST(365) * USECS_PER_DAY - 1));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		if ((r & 8191) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return (Datum) 0;
}
