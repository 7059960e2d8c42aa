-- A stand-in for the oVirt 4.5 Data Warehouse database (ovirt_engine_history),
-- written for migrun's tests from the traits of the real one (ovirt-dwh
-- packaging/dbscripts, built and checked on PostgreSQL 15):
--   * 40 tables, every one with a primary key, no foreign keys;
--   * the keys are drawn from 32 sequences that no column owns (a copy of
--     the tables alone does not bring them, and their values must follow
--     the data): configuration_seq feeds 9 configuration tables, 4 are not
--     used at all;
--   * a few hundred views over them (368 in the real schema);
--   * no unlogged table, no large object.
-- Run as the database's owner (SET ROLE ovirt_engine_history). Not the real
-- schema: the names of the tables the stand-in clients and tests use are
-- real, the rest are shaped like them.

CREATE TABLE history_configuration (
    var_name varchar(50) PRIMARY KEY,
    var_value varchar(255),
    var_datetime timestamptz
);
INSERT INTO history_configuration VALUES
    ('default_language', 'en_US', NULL), ('firstSync', 'false', now()),
    ('lastHourAggr', NULL, now()), ('lastDayAggr', NULL, now()), ('MinimalETLVersion', '4.5.0', NULL);

CREATE TABLE history_log (
    id bigint PRIMARY KEY,
    process_name varchar(50),
    history_datetime timestamptz,
    status varchar(20)
);

-- The sequences: standalone, as the real schema creates them.
CREATE SEQUENCE configuration_seq;
DO $$
DECLARE
    e text;
    agg text;
BEGIN
    -- 9 configuration tables share configuration_seq.
    FOREACH e IN ARRAY ARRAY['host', 'vm', 'cluster', 'datacenter', 'storage_domain', 'vm_disk',
                             'vm_interface', 'host_interface', 'tag'] LOOP
        EXECUTE format($t$CREATE TABLE %I (
            history_id integer PRIMARY KEY DEFAULT nextval('configuration_seq'),
            %I uuid NOT NULL,
            %I varchar(255),
            create_date timestamptz,
            update_date timestamptz,
            delete_date timestamptz)$t$, e || '_configuration', e || '_id', e || '_name');
        EXECUTE format('CREATE INDEX %I ON %I (%I)', e || '_configuration_id_idx', e || '_configuration', e || '_id');
    END LOOP;
    -- samples, hourly and daily history of 9 entities, each key from a
    -- sequence of its own (27 sequences) ...
    FOREACH e IN ARRAY ARRAY['host', 'vm', 'cluster', 'datacenter', 'storage_domain', 'vm_disk',
                             'vm_interface', 'host_interface', 'statistics_vms_users_usage'] LOOP
        EXECUTE format('CREATE SEQUENCE %I', e || '_samples_history_seq');
        EXECUTE format('CREATE SEQUENCE %I', e || '_hourly_history_seq');
        EXECUTE format('CREATE SEQUENCE %I', e || '_daily_history_seq');
        IF e <> 'host' THEN
            EXECUTE format($t$CREATE TABLE %I (
                history_id bigint PRIMARY KEY DEFAULT nextval(%L),
                history_datetime timestamptz NOT NULL,
                %I uuid NOT NULL,
                usage_percent smallint,
                configuration_version integer)$t$, e || '_samples_history', e || '_samples_history_seq', e || '_id');
            EXECUTE format('CREATE INDEX %I ON %I (history_datetime)', e || '_samples_history_datetime_idx', e || '_samples_history');
        END IF;
        -- hourly aggregates are stamped with the hour, daily ones with the day
        FOREACH agg IN ARRAY ARRAY['hourly:timestamptz', 'daily:date'] LOOP
            EXECUTE format($t$CREATE TABLE %I (
                history_id bigint PRIMARY KEY DEFAULT nextval(%L),
                history_datetime %s NOT NULL,
                %I uuid NOT NULL,
                usage_percent smallint,
                max_usage_percent smallint,
                configuration_version integer)$t$,
                e || '_' || split_part(agg, ':', 1) || '_history', e || '_' || split_part(agg, ':', 1) || '_history_seq',
                split_part(agg, ':', 2), e || '_id');
        END LOOP;
    END LOOP;
END
$$;
-- host_samples_history, which the stand-in DWH writes and the tests read.
CREATE TABLE host_samples_history (
    history_id bigint PRIMARY KEY DEFAULT nextval('host_samples_history_seq'),
    history_datetime timestamptz NOT NULL,
    host_id uuid NOT NULL,
    cpu_usage_percent smallint,
    memory_usage_percent smallint,
    configuration_version integer
);
CREATE INDEX host_samples_history_datetime_idx ON host_samples_history (history_datetime);
-- ... and 4 sequences nothing uses.
CREATE SEQUENCE history_log_archive_seq;
CREATE SEQUENCE tag_relations_history_seq;
CREATE SEQUENCE vm_device_history_seq;
CREATE SEQUENCE enum_translator_seq;
-- 2 + 9 + 27 tables so far; the 39th and 40th:
CREATE TABLE calendar (
    the_datetime timestamptz PRIMARY KEY,
    the_date date NOT NULL,
    the_hour smallint NOT NULL
);
INSERT INTO calendar SELECT h, h::date, extract(hour FROM h) FROM generate_series(date_trunc('hour', now()) - interval '30 days', date_trunc('hour', now()), interval '1 hour') h;
CREATE TABLE enum_translator (
    enum_type varchar(40) NOT NULL,
    enum_key smallint NOT NULL,
    language_code varchar(40) NOT NULL,
    value varchar(40) NOT NULL,
    PRIMARY KEY (enum_type, enum_key, language_code)
);
INSERT INTO enum_translator
SELECT t, k, 'en_US', t || ' ' || k FROM unnest(ARRAY['OS_TYPE', 'VM_STATUS', 'HOST_STATUS']) t, generate_series(0, 20) k;

-- 368 views, as the reporting layer's versioned views: each a window on
-- one table.
DO $$
DECLARE
    t record;
    n int := 0;
    pass int := 0;
BEGIN
    WHILE n < 368 LOOP
        pass := pass + 1;
        FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname LOOP
            EXIT WHEN n >= 368;
            EXECUTE format('CREATE VIEW %I AS SELECT * FROM %I', format('v4_%s_', pass) || t.relname, t.relname);
            n := n + 1;
        END LOOP;
    END LOOP;
END
$$;

-- A little history: hosts, VMs and their samples of the last days.
INSERT INTO host_configuration (host_id, host_name, create_date)
SELECT md5((g % 5)::text)::uuid, 'host' || g, now() - interval '30 days' FROM generate_series(0, 4) g;
INSERT INTO vm_configuration (vm_id, vm_name, create_date)
SELECT md5('vm' || g)::uuid, 'vm' || g, now() - interval '30 days' FROM generate_series(1, 50) g;
INSERT INTO host_samples_history (history_datetime, host_id, cpu_usage_percent, memory_usage_percent)
SELECT now() - g * interval '1 minute', md5((g % 5)::text)::uuid, g % 100, (g * 7) % 100
FROM generate_series(1, 1000) g;
INSERT INTO vm_samples_history (history_datetime, vm_id, usage_percent)
SELECT now() - (g / 50) * interval '1 minute', md5('vm' || (g % 50 + 1))::uuid, g % 100
FROM generate_series(1, 5000) g;
INSERT INTO host_hourly_history (history_datetime, host_id, usage_percent, max_usage_percent)
SELECT date_trunc('hour', now()) - g * interval '1 hour', md5((g % 5)::text)::uuid, g % 100, g % 100
FROM generate_series(1, 500) g;
