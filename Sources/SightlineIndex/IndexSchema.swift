import GRDB

/// The index's tables (SQLite through GRDB, WAL). Times are media seconds on the source's
/// timeline. Shots are the unit search returns; the per-frame tables keep the detail a review
/// page draws (boxes, labels over time). `shots_fts` indexes each shot's caption, label words
/// and on-screen text (FTS5, Porter stemming: "cats" finds "cat"); triggers keep it in step.
enum IndexSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta (key, value) VALUES ('schema', 'sightline.index/1'), ('generation', '0');

                CREATE TABLE videos (
                    id INTEGER PRIMARY KEY,
                    source TEXT NOT NULL UNIQUE,
                    location TEXT NOT NULL,
                    sha256 TEXT,
                    duration REAL NOT NULL,
                    live INTEGER NOT NULL,
                    pipeline_hash TEXT,
                    indexed_at REAL NOT NULL
                );

                CREATE TABLE shots (
                    id INTEGER PRIMARY KEY,
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    shot_index INTEGER NOT NULL,
                    start REAL NOT NULL,
                    "end" REAL NOT NULL,
                    ended_by TEXT NOT NULL,
                    caption TEXT NOT NULL,
                    label_words TEXT NOT NULL,
                    ocr_text TEXT NOT NULL,
                    people INTEGER NOT NULL,
                    faces INTEGER NOT NULL,
                    flagged INTEGER NOT NULL,
                    thumbnail TEXT,
                    thumbnail_time REAL
                );
                CREATE INDEX shots_by_video ON shots(video_id, start);

                CREATE VIRTUAL TABLE shots_fts USING fts5(
                    caption, label_words, ocr_text, content='shots', content_rowid='id', tokenize='porter unicode61');
                CREATE TRIGGER shots_fts_insert AFTER INSERT ON shots BEGIN
                    INSERT INTO shots_fts (rowid, caption, label_words, ocr_text) VALUES (new.id, new.caption, new.label_words, new.ocr_text);
                END;
                CREATE TRIGGER shots_fts_delete AFTER DELETE ON shots BEGIN
                    INSERT INTO shots_fts (shots_fts, rowid, caption, label_words, ocr_text)
                        VALUES ('delete', old.id, old.caption, old.label_words, old.ocr_text);
                END;

                CREATE TABLE labels (
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    time REAL NOT NULL, name TEXT NOT NULL, probability REAL NOT NULL, origin TEXT NOT NULL,
                    concept TEXT, concept_path TEXT, colour TEXT
                );
                CREATE INDEX labels_by_video ON labels(video_id, time);

                CREATE TABLE texts (
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    time REAL NOT NULL, text TEXT NOT NULL, confidence REAL NOT NULL
                );
                CREATE INDEX texts_by_video ON texts(video_id, time);

                CREATE TABLE detections (
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    time REAL NOT NULL, kind TEXT NOT NULL,
                    x REAL NOT NULL, y REAL NOT NULL, width REAL NOT NULL, height REAL NOT NULL, score REAL NOT NULL,
                    frame_width INTEGER NOT NULL, frame_height INTEGER NOT NULL, attributes TEXT
                );
                CREATE INDEX detections_by_video ON detections(video_id, time);

                CREATE TABLE tracks (
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    track_id INTEGER NOT NULL, label TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
                    movement TEXT NOT NULL, path TEXT NOT NULL
                );
                CREATE INDEX tracks_by_video ON tracks(video_id, start);

                CREATE TABLE flags (
                    -- AUTOINCREMENT: a re-indexed file's flags never take ids a review page
                    -- still shows for other flags.
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    category TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL, peak REAL NOT NULL,
                    evidence TEXT NOT NULL, notes TEXT NOT NULL
                );
                CREATE INDEX flags_by_video ON flags(video_id, start);

                CREATE TABLE vectors (
                    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
                    shot_id INTEGER REFERENCES shots(id) ON DELETE CASCADE,
                    space TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
                    dimension INTEGER NOT NULL,
                    vector BLOB NOT NULL
                );
                CREATE INDEX vectors_by_space ON vectors(space, shot_id);
                CREATE INDEX vectors_by_video ON vectors(video_id);
                """)
        }
        // Reviewers' verdicts on flags. Keyed by what was flagged (source, category, span), not
        // by the flag's row: a re-run replaces the rows, and an audit trail must outlive that.
        migrator.registerMigration("v2-reviews") { db in
            try db.execute(sql: """
                CREATE TABLE reviews (
                    id INTEGER PRIMARY KEY,
                    source TEXT NOT NULL, location TEXT NOT NULL, category TEXT NOT NULL,
                    start REAL NOT NULL, "end" REAL NOT NULL, peak REAL NOT NULL, evidence TEXT NOT NULL,
                    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'dismissed')),
                    note TEXT NOT NULL, reviewer TEXT NOT NULL, at REAL NOT NULL
                );
                CREATE INDEX reviews_by_flag ON reviews(source, category, start);
                CREATE INDEX reviews_by_time ON reviews(at);
                """)
        }
        // Spoken text (transcripts) beside on-screen text, searched with the rest. An external-
        // content FTS5 table cannot gain a column: it is made again and rebuilt from the shots.
        migrator.registerMigration("v3-speech") { db in
            try db.execute(sql: """
                ALTER TABLE shots ADD COLUMN speech TEXT NOT NULL DEFAULT '';
                DROP TRIGGER shots_fts_insert;
                DROP TRIGGER shots_fts_delete;
                DROP TABLE shots_fts;
                CREATE VIRTUAL TABLE shots_fts USING fts5(
                    caption, label_words, ocr_text, speech, content='shots', content_rowid='id', tokenize='porter unicode61');
                CREATE TRIGGER shots_fts_insert AFTER INSERT ON shots BEGIN
                    INSERT INTO shots_fts (rowid, caption, label_words, ocr_text, speech) VALUES (new.id, new.caption, new.label_words, new.ocr_text, new.speech);
                END;
                CREATE TRIGGER shots_fts_delete AFTER DELETE ON shots BEGIN
                    INSERT INTO shots_fts (shots_fts, rowid, caption, label_words, ocr_text, speech)
                        VALUES ('delete', old.id, old.caption, old.label_words, old.ocr_text, old.speech);
                END;
                INSERT INTO shots_fts (shots_fts) VALUES ('rebuild');
                """)
        }
        return migrator
    }
}
