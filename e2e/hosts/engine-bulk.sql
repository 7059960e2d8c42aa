SET ROLE engine;
-- engine-bulk.sql: grows the stand-in engine database (engine-schema.sql) by about
-- mb MB, in the tables that grow by nature: audit_log (most of it, ids from
-- audit_log_seq), command_entities and business_entity_snapshot (compensation data),
-- and two tables without a primary key, event_notification_hist and
-- async_tasks_entities (with their async_tasks). Run as postgres:
--   psql -X -q -v ON_ERROR_STOP=1 -v mb=N -d engine -f engine-bulk.sql
-- It inserts in batches of about 50 MB, measuring pg_database_size between them,
-- and stops once the database is mb MB larger than it was. Running it again adds
-- another mb MB.
\if :{?mb}
\else
DO $$ BEGIN RAISE EXCEPTION 'engine-bulk.sql: -v mb=N is required'; END $$;
\endif
SET client_min_messages = warning;
SET engine_bulk.mb = :'mb';

DO $bulk$
DECLARE
    target constant bigint := pg_database_size(current_database())
                              + current_setting('engine_bulk.mb')::numeric * 1024 * 1024;
    batch_bytes constant bigint := 50 * 1024 * 1024;
    n bigint := 20000;     -- audit_log rows in a batch; the first, small, batch measures bytes per row
    per_row numeric;
    before bigint;
    grown bigint;
    vms uuid[];
    nvms integer;
    admin uuid;
    salt text := md5(random()::text);  -- this run's correlation ids
    stack constant text := E'org.ovirt.engine.core.common.errors.EngineException: EngineException: '
        'org.ovirt.engine.core.vdsbroker.vdsbroker.VDSErrorException: VDSGenericException: VDSErrorException: '
        'Failed to DestroyVDS, error = Virtual machine does not exist, code = 1 (Failed with error noVM and code 1)\n'
        '\tat org.ovirt.engine.core.bll.VdsHandler.handleVdsResult(VdsHandler.java:118)\n'
        '\tat org.ovirt.engine.core.bll.VDSBrokerFrontendImpl.runVdsCommand(VDSBrokerFrontendImpl.java:33)\n'
        '\tat org.ovirt.engine.core.bll.CommandBase.runVdsCommand(CommandBase.java:2112)\n'
        '\tat org.ovirt.engine.core.bll.StopVmCommandBase.destroyVm(StopVmCommandBase.java:88)\n'
        '\tat org.ovirt.engine.core.bll.StopVmCommand.perform(StopVmCommand.java:57)\n'
        '\tat org.ovirt.engine.core.bll.VmOperationCommandBase.executeVmCommand(VmOperationCommandBase.java:34)\n'
        '\tat org.ovirt.engine.core.bll.CommandBase.executeWithoutTransaction(CommandBase.java:1174)\n'
        '\tat org.ovirt.engine.core.bll.CommandBase.executeActionInTransactionScope(CommandBase.java:1332)\n';
BEGIN
    IF current_setting('engine_bulk.mb')::numeric <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(vm_guid ORDER BY vm_guid), count(*) INTO vms, nvms FROM vm_static;
    SELECT user_id INTO admin FROM users ORDER BY username = 'admin' DESC, user_id LIMIT 1;
    LOOP
        before := pg_database_size(current_database());
        EXIT WHEN before >= target;
        IF per_row IS NOT NULL THEN
            n := greatest(1000, least(batch_bytes, target - before) / per_row);
        END IF;

        -- audit_log, and a notification sent for one event in eight.
        WITH v AS (SELECT vm_guid, vm_name, (row_number() OVER (ORDER BY vm_guid) - 1)::integer AS i FROM vm_static),
        a AS (
            INSERT INTO audit_log (log_time, severity, message, vm_id, vm_name, vds_name, log_type, log_type_name,
                                   correlation_id, user_name, call_stack)
            SELECT now() - (n - g) * interval '50 milliseconds', (ARRAY[2, 0, 0, 0, 1])[k],
                   format((ARRAY['VM %s is down with error. Exit message: %s.',
                                 'VM %s started on Host host%s (User: admin@internal-authz).',
                                 'VM %s powered off by admin@internal-authz (Host: host%s, Reason: %s).',
                                 'Migration completed (VM: %s, Source: host%s, Destination: host1, Duration: %s ms).',
                                 'Available memory of host host%2$s [%3$s MB] is under defined threshold.'])[k],
                          v.vm_name, 1 + g % 5, g),
                   CASE WHEN k < 5 THEN v.vm_guid END, CASE WHEN k < 5 THEN v.vm_name END,
                   'host' || (1 + g % 5), (ARRAY[119, 153, 33, 63, 532])[k],
                   (ARRAY['VM_DOWN_ERROR', 'USER_STARTED_VM', 'USER_STOP_VM', 'VM_MIGRATION_DONE', 'VDS_LOW_MEM'])[k],
                   CASE WHEN k IN (2, 3) THEN md5(salt || g) END, 'admin@internal-authz',
                   CASE WHEN k = 1 THEN stack || g END
            FROM generate_series(1, n) g CROSS JOIN LATERAL (SELECT 1 + g % 5 AS k) x
            JOIN v ON v.i = g % nvms
            RETURNING audit_log_id, log_time, log_type_name)
        INSERT INTO event_notification_hist (event_name, audit_log_id, method_type, sent_at, status, reason, subscriber_id)
        SELECT log_type_name, audit_log_id, 'smtp', log_time + interval '7 seconds', audit_log_id % 40 <> 0,
               CASE WHEN audit_log_id % 40 = 0 THEN 'Failed to send message to admin@example.com: Connection refused' END,
               admin
        FROM a WHERE audit_log_id % 8 = 0;

        -- Commands, their compensation snapshots, and their tasks with the tasks' entities.
        WITH c AS (
            INSERT INTO command_entities (command_id, command_type, root_command_id, command_parameters,
                                          command_params_class, created_at, status, job_id, user_id, data)
            SELECT uuid_generate_v4(), 1000 + g % 300, NULL,
                   format('{"@class":"org.ovirt.engine.core.common.action.VmOperationParameterBase","vmId":"%s",'
                          '"correlationId":"%s","parentCommand":"Unknown","commandType":"StopVm","shouldBeLogged":true,'
                          '"compensationEnabled":true,"executionReason":"REGULAR_FLOW","sessionId":"%s","lockProperties":'
                          '{"scope":"Execution","wait":true},"endProcedure":"PARENT_MANAGED","taskGroupSuccess":true}%s',
                          vms[1 + g % nvms], md5(salt || 'c' || g), md5(salt || 's' || g), repeat(md5(salt || g), 12)),
                   'org.ovirt.engine.core.common.action.VmOperationParameterBase', now() - g * interval '1 second',
                   'SUCCEEDED', uuid_generate_v4(), admin, md5('d' || g)
            FROM generate_series(1, n / 8) g
            RETURNING command_id, command_type),
        s AS (
            INSERT INTO business_entity_snapshot (command_id, command_type, entity_id, entity_type, entity_snapshot,
                                                  snapshot_class, snapshot_type)
            SELECT command_id, 'StopVm', vms[1 + command_type % nvms]::text, 'VmDynamic',
                   repeat(md5(command_id::text), 40), 'org.ovirt.engine.core.common.businessentities.VmDynamic', 0
            FROM c
            RETURNING command_id),
        t AS (
            INSERT INTO async_tasks (task_id, action_type, status, result, command_id, root_command_id, started_at,
                                     task_type, vdsm_task_id, user_id)
            SELECT uuid_generate_v4(), command_type, 3, 0, command_id, command_id, now(), 2, uuid_generate_v4(), admin
            FROM c WHERE command_type % 4 = 0
            RETURNING task_id, command_id)
        INSERT INTO async_tasks_entities (async_task_id, entity_id, entity_type)
        SELECT t.task_id, e, 'VM' FROM t, LATERAL (VALUES (vms[1 + abs(hashtext(t.task_id::text)) % nvms]),
                                                         (t.command_id)) v(e);

        COMMIT;
        grown := pg_database_size(current_database()) - before;
        per_row := greatest(grown::numeric / n, 100);  -- bytes the database grew by, per audit_log row
    END LOOP;
END
$bulk$;
RESET ROLE;
