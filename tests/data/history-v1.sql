BEGIN TRANSACTION;
CREATE TABLE ink_schema (
	version INTEGER NOT NULL
);
INSERT INTO "ink_schema" VALUES(1);
CREATE TABLE ink_sessions (
	id INTEGER NOT NULL, 
	user VARCHAR(255) NOT NULL, 
	server VARCHAR(255) NOT NULL, 
	app VARCHAR(64) NOT NULL, 
	image VARCHAR(64) NOT NULL, 
	experiment VARCHAR(64) NOT NULL, 
	backend VARCHAR(32) NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	cpus INTEGER NOT NULL, 
	memory_mb INTEGER NOT NULL, 
	walltime_s INTEGER NOT NULL, 
	gpus INTEGER NOT NULL, 
	submitted DATETIME NOT NULL, 
	started DATETIME, 
	ended DATETIME, 
	day VARCHAR(10) NOT NULL, 
	wait_s FLOAT, 
	run_s FLOAT, 
	end_reason VARCHAR(500) NOT NULL, 
	peak_memory_mb FLOAT, 
	mean_cpu FLOAT, 
	peak_cpu FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO "ink_sessions" VALUES(1,'inkt_alice','','jupyterlab','el9','juno','slurm','41',2,4096,3600,0,'2026-11-30 09:00:00.000000','2026-11-30 09:01:00.000000','2026-11-30 11:01:00.000000','2026-11-30',60.0,7200.0,'stopped',1300.0,0.5,1.5);
CREATE INDEX ix_ink_sessions_day_user ON ink_sessions (day, user);
CREATE INDEX ix_ink_sessions_figures ON ink_sessions (day, app, cpus, run_s, mean_cpu, peak_memory_mb, memory_mb, wait_s, started);
CREATE INDEX ix_ink_sessions_submitted ON ink_sessions (submitted);
CREATE INDEX ix_ink_sessions_user ON ink_sessions (user);
CREATE INDEX ix_ink_sessions_day_wait ON ink_sessions (day, wait_s);
CREATE INDEX ix_ink_sessions_day_groups ON ink_sessions (day, experiment, user, memory_mb, peak_memory_mb);
CREATE INDEX ix_ink_sessions_app ON ink_sessions (app);
COMMIT;
