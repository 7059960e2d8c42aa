-- bench/engine-db.sql — a synthetic oVirt-engine-like database for the
-- benchmark (bench/run.sh), about :mb MB on disk.
--
--   psql -X -v ON_ERROR_STOP=1 -v mb=1024 -d engine -f bench/engine-db.sql
--
-- Run as a superuser in the test hosts' `engine` database, which up.sh
-- made (role engine, uuid-ossp, the stand-in engine's heartbeat table).
-- It replaces up.sh's small tables with an engine-like schema owned by
-- the engine role: uuid keys (md5-derived, so that foreign keys are
-- computed rather than looked up; uuid_generate_v4() as column defaults),
-- foreign keys, indexes, a large append-only audit_log (about 60 % of the
-- size), a view, plpgsql functions, standalone and owned sequences. The
-- heartbeat table and the DWH database are left alone.
--
-- Fast: one transaction, set-based INSERT ... SELECT generate_series into
-- tables created in the same transaction (with wal_level=minimal, which
-- run.sh sets while it builds the template, nothing of it is WAL-logged),
-- indexes and foreign keys added after the data, then VACUUM (FREEZE,
-- ANALYZE) so that every run reads settled pages.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT greatest(:mb, 8)::bigint AS mb \gset
-- Calibrated on PostgreSQL 15: about 1900 audit rows and 172 VMs per MB.
SELECT :mb * 1900 AS audit_rows, greatest(:mb * 172, 100) AS vms,
       greatest(:mb / 8, 8) AS hosts, greatest(:mb / 64, 2) AS clusters \gset

BEGIN;
SET LOCAL synchronous_commit = off;
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL work_mem = '64MB';
SET LOCAL ROLE engine;

DROP VIEW IF EXISTS vms CASCADE;
DROP FUNCTION IF EXISTS insertauditlog, update_vm_dynamic_stamp CASCADE;
DROP TABLE IF EXISTS audit_log, images, vm_device, vm_dynamic, vm_static, vds_static,
    cluster, storage_pool, vdc_options, schema_version CASCADE;
DROP SEQUENCE IF EXISTS vdc_options_seq, event_notification_seq;

-- The keys the rows refer to, computed once per statement (a view: its
-- arrays are InitPlans held in memory; a table would store them TOASTed,
-- to be fetched again for every row): a lookup k.vm[i] is much cheaper
-- than an md5 per row.
CREATE TEMP VIEW k AS
SELECT (SELECT array_agg(md5('host' || i)::uuid ORDER BY i) FROM generate_series(1, :hosts) i) AS host,
       (SELECT array_agg(md5('vm' || i)::uuid ORDER BY i) FROM generate_series(1, :vms) i) AS vm,
       (SELECT array_agg(md5('cl' || i)::uuid ORDER BY i) FROM generate_series(1, :clusters) i) AS cl,
       (SELECT array_agg(md5('user' || i)::uuid ORDER BY i) FROM generate_series(1, 50) i) AS usr;

CREATE TABLE schema_version (
    id serial PRIMARY KEY, version varchar(10) NOT NULL, script varchar(255) NOT NULL,
    checksum varchar(128), installed_by varchar(63) NOT NULL DEFAULT 'engine',
    started_at timestamptz NOT NULL DEFAULT now(), ended_at timestamptz,
    state varchar(15) NOT NULL DEFAULT 'INSTALLED', current boolean NOT NULL DEFAULT false);
INSERT INTO schema_version (version, script, checksum, ended_at, current)
SELECT '04050' || lpad(g::text, 3, '0'), 'upgrade/04_05_' || lpad(g::text, 4, '0') || '_change.sql',
       md5(g::text), now(), g = 400
FROM generate_series(10, 400, 10) g;

CREATE SEQUENCE vdc_options_seq;
CREATE TABLE vdc_options (
    option_id integer NOT NULL DEFAULT nextval('vdc_options_seq') PRIMARY KEY,
    option_name varchar(100) NOT NULL, option_value text NOT NULL,
    version varchar(40) NOT NULL DEFAULT 'general', default_value text);
INSERT INTO vdc_options (option_name, option_value, default_value)
SELECT 'Option' || g, (g * 37 % 1000)::text, (g * 37 % 1000)::text FROM generate_series(1, 900) g;
CREATE SEQUENCE event_notification_seq START 1000;
SELECT setval('event_notification_seq', 4242) \g /dev/null

CREATE TABLE storage_pool (
    id uuid NOT NULL DEFAULT uuid_generate_v4(), name varchar(40) NOT NULL, description varchar(4000),
    storage_pool_type integer, status integer NOT NULL DEFAULT 0, compatibility_version varchar(40) NOT NULL DEFAULT '4.7',
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
INSERT INTO storage_pool (id, name, description)
SELECT md5('dc' || g)::uuid, 'dc' || g, 'Data center ' || g FROM generate_series(1, 2) g;

CREATE TABLE cluster (
    cluster_id uuid NOT NULL DEFAULT uuid_generate_v4(), name varchar(40) NOT NULL, description varchar(4000),
    cpu_name varchar(255), storage_pool_id uuid, compatibility_version varchar(40) NOT NULL DEFAULT '4.7',
    max_vds_memory_over_commit integer NOT NULL DEFAULT 100, _create_date timestamptz DEFAULT now());
INSERT INTO cluster (cluster_id, name, description, cpu_name, storage_pool_id)
SELECT md5('cl' || g)::uuid, 'cluster' || g, 'Cluster ' || g, 'Intel Cascadelake Server Family',
       md5('dc' || (1 + g % 2))::uuid
FROM generate_series(1, :clusters) g;

CREATE TABLE vds_static (
    vds_id uuid NOT NULL DEFAULT uuid_generate_v4(), vds_name varchar(255) NOT NULL, host_name varchar(255) NOT NULL,
    port integer NOT NULL DEFAULT 54321, cluster_id uuid NOT NULL, vds_unique_id varchar(128),
    server_SSL_enabled boolean, vds_type integer NOT NULL DEFAULT 0, free_text_comment text,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
INSERT INTO vds_static (vds_id, vds_name, host_name, cluster_id, vds_unique_id, server_SSL_enabled, free_text_comment)
SELECT md5('host' || g)::uuid, 'host' || g, 'host' || g || '.example.com', k.cl[1 + g % :clusters],
       md5('unique' || g), true, 'Rack ' || (g % 40) || ', slot ' || (g % 12)
FROM k, generate_series(1, :hosts) g;

CREATE TABLE vm_static (
    vm_guid uuid NOT NULL DEFAULT uuid_generate_v4(), vm_name varchar(255) NOT NULL, mem_size_mb integer NOT NULL,
    num_of_sockets integer NOT NULL DEFAULT 1, cpu_per_socket integer NOT NULL DEFAULT 1,
    os integer NOT NULL DEFAULT 0, description varchar(4000), free_text_comment text,
    cluster_id uuid NOT NULL, dedicated_vm_for_vds uuid, creation_date timestamptz,
    auto_startup boolean, is_stateless boolean, usb_policy integer, time_zone varchar(40),
    entity_type varchar(32) NOT NULL DEFAULT 'VM', origin integer DEFAULT 0,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
INSERT INTO vm_static (vm_guid, vm_name, mem_size_mb, num_of_sockets, cpu_per_socket, os, description,
                       free_text_comment, cluster_id, dedicated_vm_for_vds, creation_date, auto_startup,
                       is_stateless, usb_policy, time_zone)
SELECT k.vm[g], 'vm-' || lpad(g::text, 7, '0'), 1024 * (1 + g % 16), 1 + g % 4, 1 + g % 2, g % 30,
       'Ünïcödé VM ' || g || ': ' || md5(g::text) || md5((g * 7)::text),
       CASE WHEN g % 5 = 0 THEN 'owner team ' || (g % 97) END,
       k.cl[1 + g % :clusters],
       CASE WHEN g % 10 = 0 THEN k.host[1 + g % :hosts] END,
       now() - (g % 1000) * interval '1 day', g % 3 = 0, false, g % 3, 'Etc/GMT'
FROM k, generate_series(1, :vms) g;

CREATE TABLE vm_dynamic (
    vm_guid uuid NOT NULL, status integer NOT NULL, vm_ip text, vm_fqdn text, vm_host varchar(255),
    run_on_vds uuid, migrating_to_vds uuid, last_start_time timestamptz, last_stop_time timestamptz,
    guest_os varchar(255), guest_cur_user_name varchar(255), console_cur_user_name varchar(255),
    hash varchar(30), _update_date timestamptz);
INSERT INTO vm_dynamic (vm_guid, status, vm_ip, vm_fqdn, vm_host, run_on_vds, last_start_time, guest_os, hash)
SELECT k.vm[g], CASE WHEN g % 4 = 0 THEN 0 ELSE 1 END,
       '10.' || (g / 65536) % 256 || '.' || (g / 256) % 256 || '.' || g % 256,
       'vm-' || g || '.example.com', 'vm-' || g,
       CASE WHEN g % 4 <> 0 THEN k.host[1 + g % :hosts] END,
       now() - (g % 100) * interval '1 hour', 'Red Hat Enterprise Linux 9.' || g % 5, md5(g::text)::varchar(30)
FROM k, generate_series(1, :vms) g;

CREATE TABLE vm_device (
    device_id uuid NOT NULL, vm_id uuid NOT NULL, type varchar(30) NOT NULL, device varchar(30) NOT NULL,
    address varchar(255) NOT NULL, spec_params text, is_managed boolean NOT NULL DEFAULT false,
    is_plugged boolean, is_readonly boolean NOT NULL DEFAULT false, alias varchar(255) NOT NULL DEFAULT '',
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
INSERT INTO vm_device (device_id, vm_id, type, device, address, spec_params, is_managed, is_plugged, alias)
SELECT md5('dev' || g || '-' || d)::uuid, k.vm[g],
       (ARRAY['disk', 'interface', 'video', 'balloon'])[d], (ARRAY['disk', 'bridge', 'qxl', 'memballoon'])[d],
       '{type=pci, slot=0x0' || d || ', bus=0x00, domain=0x0000, function=0x0}',
       '{"model": "virtio", "vram": "' || (8192 * d) || '", "id": "' || md5(g::text || d) || '"}',
       true, true, 'ua-' || md5(g::text || '-' || d)
FROM k, generate_series(1, :vms) g, generate_series(1, 4) d;

CREATE TABLE images (
    image_guid uuid NOT NULL, vm_guid uuid NOT NULL, creation_date timestamptz NOT NULL, size bigint NOT NULL,
    it_guid uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', parentid uuid,
    imagestatus integer DEFAULT 0, volume_type integer NOT NULL DEFAULT 2, volume_format integer NOT NULL DEFAULT 4,
    active boolean NOT NULL DEFAULT false, _update_date timestamptz);
INSERT INTO images (image_guid, vm_guid, creation_date, size, imagestatus, active)
SELECT md5('img' || g || '-' || d)::uuid, k.vm[g], now() - (g % 700) * interval '1 day',
       (10 + g % 90)::bigint * 1073741824, 1, true
FROM k, generate_series(1, :vms) g, generate_series(1, 2) d;

-- The append-only audit log: most of the database, as in a real engine.
CREATE TABLE audit_log (
    audit_log_id bigserial NOT NULL, log_time timestamptz NOT NULL, log_type integer NOT NULL,
    log_type_name varchar(100) DEFAULT '', severity integer NOT NULL, message text NOT NULL,
    user_id uuid, user_name varchar(255), vds_id uuid, vds_name varchar(255), vm_id uuid, vm_name varchar(255),
    processed boolean NOT NULL DEFAULT false, correlation_id varchar(50), origin varchar(25) DEFAULT 'oVirt',
    deleted boolean NOT NULL DEFAULT false);
INSERT INTO audit_log (log_time, log_type, log_type_name, severity, message, user_id, user_name,
                       vds_id, vds_name, vm_id, vm_name, correlation_id)
SELECT now() - (:audit_rows - g) * interval '1 second', g % 900,
       (ARRAY['USER_RUN_VM', 'VM_DOWN', 'USER_VDC_LOGIN', 'VDS_DETECTED', 'VM_MIGRATION_DONE'])[1 + g % 5],
       (g % 4) * 10,
       'VM vm-' || (1 + g % :vms) || ' was started by admin@internal-authz (Host: host' || (1 + g % :hosts) || '). '
           || md5(g::text),
       k.usr[1 + g % 50], 'admin@internal-authz',
       k.host[1 + g % :hosts], 'host' || (1 + g % :hosts),
       CASE WHEN g % 3 <> 0 THEN k.vm[1 + g % :vms] END,
       CASE WHEN g % 3 <> 0 THEN 'vm-' || (1 + g % :vms) END,
       'c' || to_hex(g / 4)
FROM k, generate_series(1, :audit_rows) g;

-- Keys, indexes and foreign keys after the data: one build each.
ALTER TABLE storage_pool ADD PRIMARY KEY (id), ADD UNIQUE (name);
ALTER TABLE cluster ADD PRIMARY KEY (cluster_id), ADD UNIQUE (name),
    ADD FOREIGN KEY (storage_pool_id) REFERENCES storage_pool (id) ON DELETE SET NULL;
ALTER TABLE vds_static ADD PRIMARY KEY (vds_id), ADD UNIQUE (vds_name),
    ADD FOREIGN KEY (cluster_id) REFERENCES cluster (cluster_id);
ALTER TABLE vm_static ADD PRIMARY KEY (vm_guid),
    ADD FOREIGN KEY (cluster_id) REFERENCES cluster (cluster_id),
    ADD FOREIGN KEY (dedicated_vm_for_vds) REFERENCES vds_static (vds_id);
CREATE INDEX idx_vm_static_vm_name ON vm_static (vm_name);
CREATE INDEX idx_vm_static_cluster_id ON vm_static (cluster_id);
ALTER TABLE vm_dynamic ADD PRIMARY KEY (vm_guid),
    ADD FOREIGN KEY (vm_guid) REFERENCES vm_static (vm_guid) ON DELETE CASCADE,
    ADD FOREIGN KEY (run_on_vds) REFERENCES vds_static (vds_id);
CREATE INDEX idx_vm_dynamic_run_on_vds ON vm_dynamic (run_on_vds);
ALTER TABLE vm_device ADD PRIMARY KEY (device_id, vm_id),
    ADD FOREIGN KEY (vm_id) REFERENCES vm_static (vm_guid) ON DELETE CASCADE;
CREATE INDEX idx_vm_device_vm_id ON vm_device (vm_id);
ALTER TABLE images ADD PRIMARY KEY (image_guid),
    ADD FOREIGN KEY (vm_guid) REFERENCES vm_static (vm_guid) ON DELETE CASCADE;
CREATE INDEX idx_images_vm_guid ON images (vm_guid);
ALTER TABLE audit_log ADD PRIMARY KEY (audit_log_id);
CREATE INDEX idx_audit_log_log_time ON audit_log (log_time);
CREATE INDEX idx_audit_log_vm_id ON audit_log (vm_id);
CREATE INDEX idx_audit_correlation_id ON audit_log (correlation_id);

CREATE VIEW vms AS
SELECT s.vm_guid, s.vm_name, s.mem_size_mb, s.cluster_id, d.status, d.run_on_vds, d.vm_ip
FROM vm_static s JOIN vm_dynamic d USING (vm_guid);

CREATE FUNCTION insertauditlog(v_log_time timestamptz, v_log_type integer, v_severity integer,
                               v_message text, v_vm_id uuid, OUT v_audit_log_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (log_time, log_type, severity, message, vm_id)
    VALUES (v_log_time, v_log_type, v_severity, v_message, v_vm_id)
    RETURNING audit_log_id INTO v_audit_log_id;
END;
$$;

CREATE FUNCTION getvmsrunningonvds(v_vds_id uuid) RETURNS SETOF vms
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM vms WHERE run_on_vds = v_vds_id;
END;
$$;

CREATE FUNCTION update_vm_dynamic_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW._update_date := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER vm_dynamic_stamp BEFORE UPDATE ON vm_dynamic
    FOR EACH ROW EXECUTE FUNCTION update_vm_dynamic_stamp();

-- The live engine's last writes, through its own function.
SELECT insertauditlog(now(), 1, 0, 'benchmark database generated (' || :mb || ' MB)', NULL) \g /dev/null
COMMIT;

VACUUM (FREEZE, ANALYZE);
