-- media_reco demo: a synthetic streaming service, its item-to-item recommender,
-- similar titles and recommendations.  Run by test/demo.sh in a throw-away cluster.
\pset footer off
CREATE EXTENSION media_reco;

\echo
\echo '== 1. A synthetic catalogue and viewing log (seed 42): 20,000 users, 5,000 titles, 400,000 views'
CREATE TABLE titles AS SELECT * FROM media_reco.synthetic_items(5000, 42);
ALTER TABLE titles ADD PRIMARY KEY (item_id);
CREATE TABLE views AS SELECT * FROM media_reco.synthetic_interactions(20000, 5000, 400000, 42);
CREATE INDEX ON views (user_id, item_id) INCLUDE (plays);
ANALYZE titles, views;
SELECT count(*) AS views, count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS titles,
       min(watched_at)::date AS first_view, max(watched_at)::date AS last_view
  FROM views;

\echo
\echo '== 2. Create a recommender (cosine over play counts, 50 neighbours per title) and fill its neighbour table'
SELECT media_reco.create_recommender('demo', 'views', weight_col => 'plays',
                                     metric => 'cosine', k => 50, shrinkage => 10);
SELECT * FROM media_reco.refresh_neighbors('demo');

\echo
\echo '== 3. Titles similar to the most popular title (genres should mostly agree)'
SELECT t.item_id, t.title, t.genre FROM titles t WHERE popularity_rank = 1;
SELECT s.rank, s.neighbor_id, t.title, t.genre, round(s.similarity::numeric, 4) AS similarity
  FROM titles p,
       LATERAL media_reco.similar_items('demo', p.item_id, 8) s
  JOIN titles t ON t.item_id = s.neighbor_id
 WHERE p.popularity_rank = 1
 ORDER BY s.rank;

\echo
\echo '== 4. Recommendations for three users, next to the genres they actually watch'
WITH u AS (SELECT user_id FROM views GROUP BY user_id HAVING count(*) BETWEEN 30 AND 60
           ORDER BY user_id LIMIT 3)
SELECT u.user_id,
       (SELECT string_agg(genre || ' ' || n, ', ' ORDER BY n DESC, genre)
          FROM (SELECT t.genre, count(*) AS n FROM views v JOIN titles t USING (item_id)
                 WHERE v.user_id = u.user_id GROUP BY t.genre ORDER BY n DESC LIMIT 3) g) AS watched_genres,
       r.rank, t.title, t.genre, round(r.score::numeric, 3) AS score
  FROM u, LATERAL media_reco.recommend('demo', u.user_id, 5) r
  JOIN titles t ON t.item_id = r.item_id
 ORDER BY u.user_id, r.rank;

\echo
\echo '== 5. A new binge changes recommendations at once (the history is read live, no refresh needed)'
SELECT r.rank, t.title, t.genre, round(r.score::numeric, 3) AS score
  FROM media_reco.recommend('demo', 17, 3) r JOIN titles t USING (item_id) ORDER BY r.rank;
\echo 'user 17 now binges the three most popular Horror titles ...'
INSERT INTO views (user_id, item_id, plays)
SELECT 17, item_id, 30 FROM titles WHERE genre = 'Horror' ORDER BY popularity_rank LIMIT 3;
SELECT r.rank, t.title, t.genre, round(r.score::numeric, 3) AS score
  FROM media_reco.recommend('demo', 17, 3) r JOIN titles t USING (item_id) ORDER BY r.rank;

\echo
\echo '== 6. The neighbour table for BI tools, and the refresh history for the DBA'
SELECT * FROM media_reco.item_neighbors WHERE recommender = 'demo' ORDER BY item_id, rank LIMIT 5;
SELECT recommender, interactions, users, items, pairs, round(seconds::numeric, 3) AS seconds,
       pg_size_pretty(peak_memory_bytes) AS peak_memory
  FROM media_reco.refresh_history;

\echo
\echo '== 7. Who will churn? A random forest on per-user behaviour, trained and used in SQL'
-- one row per user: activity, genre mix, recency; "churned" = no views in the last 60 days of 2025
CREATE TABLE user_features AS
SELECT v.user_id,
       count(*)::int                                        AS views,
       sum(v.plays)::int                                    AS plays,
       count(DISTINCT t.genre)::int                         AS genres,
       (mode() WITHIN GROUP (ORDER BY t.genre))             AS top_genre,
       extract(epoch FROM max(v.watched_at) FILTER (WHERE v.watched_at < '2025-11-01')
               - min(v.watched_at)) / 86400                 AS active_days,
       (max(v.watched_at) < '2025-11-01')                   AS churned
  FROM views v JOIN titles t USING (item_id)
 GROUP BY v.user_id
HAVING min(v.watched_at) < '2025-11-01';
SELECT model_name, rows, features, classes, round(oob_score::numeric, 3) AS oob_accuracy,
       round(seconds::numeric, 2) AS seconds
  FROM media_reco.train_forest('churn', 'user_features', 'churned',
                               '{views, plays, genres, top_genre, active_days}', '{"n_trees": 50, "seed": 1}');
SELECT * FROM media_reco.feature_importance('churn');
\echo 'the ten users most likely to churn, scored from their rows:'
SELECT user_id, views, top_genre, round((media_reco.predict_proba('churn', u))[2]::numeric, 3) AS p_churn
  FROM user_features u ORDER BY (media_reco.predict_proba('churn', u))[2] DESC, user_id LIMIT 10;
\echo 'why is user 1318 at risk? each feature''s part of the churn probability (TreeSHAP, exact):'
SELECT feature, value, round(contribution::numeric, 4) AS contribution, rank
  FROM user_features u, LATERAL media_reco.explain_prediction('churn', u, class => 1)
 WHERE u.user_id = 1318 ORDER BY rank;
SELECT round(media_reco.explain_base_value('churn', class => 1)::numeric, 4) AS base_value,
       round((media_reco.predict_proba('churn', u))[2]::numeric, 4) AS p_churn
  FROM user_features u WHERE u.user_id = 1318;
\echo 'what drives churn over the users: mean |contribution| (shap_importance) beside impurity importance:'
SELECT s.feature, round(s.importance::numeric, 4) AS shap_importance, s.rank AS shap_rank,
       round(f.importance::numeric, 4) AS impurity_importance, f.rank AS impurity_rank
  FROM media_reco.shap_importance('churn', 'user_features', 5000) s
  JOIN media_reco.feature_importance('churn') f USING (feature) ORDER BY s.rank;
SELECT media_reco.drop_model('churn');

SELECT media_reco.drop_recommender('demo');
\echo
\echo '== demo finished; the throw-away cluster is removed now'
