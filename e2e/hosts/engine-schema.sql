SET ROLE engine;
-- engine-schema.sql: a stand-in for the oVirt 4.5 engine database, written for
-- migrun's e2e hosts. Not oVirt's schema: a smaller one of our own with the same
-- traits a migration meets (156 tables, 182 foreign keys, 387 indexes, 147
-- views, 400 stored procedures in oVirt's style, 9 sequences owned by no column,
-- a generated column, 12 tables without a primary key, only two of them with an
-- index usable as REPLICA IDENTITY). Run as postgres in database engine (owned
-- by role engine, uuid-ossp already created):
--   psql -X -q -v ON_ERROR_STOP=1 -d engine -f engine-schema.sql
-- Must run on PostgreSQL 13 and 15. Every object is owned by engine (SET ROLE above).
SET client_min_messages = warning;
-- Coarser statistics for the final ANALYZE (this session only): it samples 3,000 rows a table, not 30,000.
SET default_statistics_target = 10;
-- One transaction: one commit, not one per statement.
BEGIN;

-- Sequences owned by no column: used by DEFAULT nextval(...) or by functions.
CREATE SEQUENCE audit_log_seq;
CREATE SEQUENCE uuid_sequence;
CREATE SEQUENCE custom_actions_seq;
CREATE SEQUENCE engine_session_seq;
CREATE SEQUENCE sso_clients_seq;
CREATE SEQUENCE sso_scope_dependency_seq;
CREATE SEQUENCE vdc_db_log_seq;
CREATE SEQUENCE business_entity_snapshot_seq;
CREATE SEQUENCE vds_spm_id_seq START 1;

-- ---------------------------------------------------------------- configuration, users
CREATE TABLE schema_version (id serial PRIMARY KEY, version text NOT NULL, script text NOT NULL, checksum text,
    installed_by text NOT NULL DEFAULT 'engine', started_at timestamptz NOT NULL DEFAULT now(), ended_at timestamptz,
    state text NOT NULL DEFAULT 'INSTALLED', current boolean NOT NULL DEFAULT false, comment text);
CREATE TABLE vdc_options (option_id serial PRIMARY KEY, option_name varchar(100) NOT NULL, option_value text NOT NULL,
    version varchar(40) NOT NULL DEFAULT 'general', default_value text);
CREATE UNIQUE INDEX idx_vdc_options_name_version ON vdc_options (option_name, version);
CREATE TABLE external_variable (var_name varchar(100) PRIMARY KEY, var_value varchar(4000), _update_date timestamptz);
CREATE TABLE dwh_history_timekeeping (var_name varchar(50) NOT NULL, var_value varchar(255), var_datetime timestamptz);
-- A unique index, but over an expression: no replica identity.
CREATE UNIQUE INDEX idx_dwh_history_timekeeping_var_name ON dwh_history_timekeeping (lower(var_name));
CREATE TABLE dwh_osinfo (os_id integer PRIMARY KEY, os_name varchar(255));
CREATE TABLE users (user_id uuid PRIMARY KEY, name varchar(255), surname varchar(255), domain varchar(255) NOT NULL,
    username varchar(255) NOT NULL, department varchar(255), email varchar(255), note varchar(255),
    last_admin_check_status boolean DEFAULT false, external_id text NOT NULL, namespace varchar(2048) NOT NULL DEFAULT '*',
    _create_date timestamptz DEFAULT now(), _update_date timestamptz,
    user_and_domain text GENERATED ALWAYS AS (username::text || '@' || domain::text) STORED);
CREATE UNIQUE INDEX idx_users_domain_external_id ON users (domain, external_id, namespace);
CREATE INDEX idx_users_username ON users (username);
CREATE TABLE ad_groups (id uuid PRIMARY KEY, name varchar(256) NOT NULL, domain varchar(100),
    distinguishedname varchar(4000), external_id text NOT NULL, namespace varchar(2048) DEFAULT '*');
CREATE TABLE roles (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(126) NOT NULL UNIQUE,
    description varchar(4000), is_readonly boolean NOT NULL DEFAULT false, role_type integer NOT NULL DEFAULT 1,
    allows_viewing_children boolean NOT NULL DEFAULT false, app_mode integer NOT NULL DEFAULT 255);
CREATE TABLE roles_groups (role_id uuid NOT NULL REFERENCES roles ON DELETE CASCADE, action_group_id integer NOT NULL,
    PRIMARY KEY (role_id, action_group_id));
CREATE TABLE permissions (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    role_id uuid NOT NULL REFERENCES roles ON DELETE CASCADE, ad_element_id uuid NOT NULL, object_id uuid NOT NULL,
    object_type_id integer NOT NULL, creation_date bigint DEFAULT extract(epoch FROM now())::bigint);
CREATE UNIQUE INDEX idx_permissions_unique ON permissions (ad_element_id, role_id, object_id);
CREATE INDEX idx_permissions_object_id ON permissions (object_id);
CREATE TABLE user_profiles (profile_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE, ssh_public_key_id uuid, ssh_public_key text,
    user_portal_vm_auto_login boolean DEFAULT true);
CREATE TABLE engine_sessions (id bigint PRIMARY KEY DEFAULT nextval('engine_session_seq'),
    engine_session_id text NOT NULL UNIQUE, user_id uuid NOT NULL, user_name varchar(255) NOT NULL, group_ids text,
    role_ids text, source_ip varchar(50), authz_name varchar(255) NOT NULL);
CREATE TABLE sso_clients (id bigint PRIMARY KEY DEFAULT nextval('sso_clients_seq'), client_id varchar(128) NOT NULL UNIQUE,
    client_secret varchar(1024) NOT NULL, callback_prefix varchar(1024), certificate_location varchar(1024),
    description text, email varchar(256), scope varchar(1024), trusted boolean NOT NULL DEFAULT true);
CREATE TABLE sso_scope_dependency (id bigint PRIMARY KEY DEFAULT nextval('sso_scope_dependency_seq'),
    scope varchar(128) NOT NULL, dependencies varchar(4096));
CREATE TABLE custom_actions (action_id integer PRIMARY KEY DEFAULT nextval('custom_actions_seq'),
    action_name varchar(50) NOT NULL, path varchar(300) NOT NULL, tab integer NOT NULL, description varchar(4000));
CREATE TABLE vdc_db_log (error_id bigint PRIMARY KEY DEFAULT nextval('vdc_db_log_seq'),
    occured_at timestamptz NOT NULL DEFAULT now(), error_code varchar(16) NOT NULL, error_message varchar(2048),
    error_proc varchar(126), error_line integer);
CREATE TABLE engine_backup_log (scope varchar(64) NOT NULL, done_at timestamptz NOT NULL, is_passed boolean,
    output_message text, fqdn varchar(255), log_path text, PRIMARY KEY (scope, done_at));
CREATE TABLE object_column_white_list (object_name varchar(128) NOT NULL, column_name varchar(128) NOT NULL,
    PRIMARY KEY (object_name, column_name));
CREATE TABLE object_column_white_list_sql (object_name varchar(128) PRIMARY KEY, sql text NOT NULL);

-- ---------------------------------------------------------------- data centers, clusters, policies
CREATE TABLE mac_pools (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(255), description varchar(4000),
    allow_duplicate_mac_addresses boolean NOT NULL DEFAULT false, default_pool boolean NOT NULL DEFAULT false);
CREATE TABLE mac_pool_ranges (mac_pool_id uuid NOT NULL REFERENCES mac_pools ON DELETE CASCADE,
    from_mac varchar(17) NOT NULL, to_mac varchar(17) NOT NULL);
CREATE TABLE storage_pool (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(40) NOT NULL UNIQUE,
    description varchar(4000), storage_pool_format_type varchar(50), status integer NOT NULL DEFAULT 0,
    master_domain_version integer NOT NULL DEFAULT 0, spm_vds_id uuid,
    compatibility_version varchar(40) NOT NULL DEFAULT '4.7', quota_enforcement_type integer, free_text_comment text,
    is_local boolean, mac_pool_id uuid REFERENCES mac_pools, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE cluster_policies (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(128) NOT NULL,
    description varchar(4000), is_locked boolean NOT NULL DEFAULT false, is_default boolean NOT NULL DEFAULT false,
    custom_properties text);
CREATE TABLE policy_units (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(128) NOT NULL,
    is_internal boolean NOT NULL, custom_properties_regex text, type smallint DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true, description text);
CREATE TABLE cluster_policy_units (cluster_policy_id uuid NOT NULL REFERENCES cluster_policies ON DELETE CASCADE,
    policy_unit_id uuid NOT NULL REFERENCES policy_units ON DELETE CASCADE, filter_sequence integer DEFAULT 0,
    factor integer DEFAULT 1);
CREATE TABLE cluster (cluster_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(40) NOT NULL UNIQUE,
    description varchar(4000), cpu_name varchar(255), storage_pool_id uuid REFERENCES storage_pool ON DELETE SET NULL,
    max_vds_memory_over_commit integer NOT NULL DEFAULT 100, compatibility_version varchar(40) NOT NULL DEFAULT '4.7',
    transparent_hugepages boolean NOT NULL DEFAULT true, migrate_on_error integer NOT NULL DEFAULT 1,
    virt_service boolean NOT NULL DEFAULT true, gluster_service boolean NOT NULL DEFAULT false,
    cluster_policy_id uuid REFERENCES cluster_policies, architecture integer NOT NULL DEFAULT 1,
    mac_pool_id uuid REFERENCES mac_pools, free_text_comment text, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE cluster_features (feature_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), feature_name varchar(256) NOT NULL,
    version varchar(40), category integer NOT NULL, description text);
CREATE TABLE supported_cluster_features (cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE,
    feature_id uuid NOT NULL REFERENCES cluster_features ON DELETE CASCADE, is_enabled boolean,
    PRIMARY KEY (cluster_id, feature_id));
CREATE TABLE qos (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), qos_type smallint NOT NULL, name varchar(50),
    description text, storage_pool_id uuid REFERENCES storage_pool ON DELETE CASCADE, max_throughput integer,
    max_iops integer, cpu_limit smallint, inbound_average smallint, outbound_average smallint,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE cpu_profiles (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50) NOT NULL,
    cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE, qos_id uuid REFERENCES qos ON DELETE SET NULL,
    description text, _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE quota (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    storage_pool_id uuid REFERENCES storage_pool ON DELETE CASCADE, quota_name varchar(65) NOT NULL,
    description varchar(250), threshold_cluster_percentage integer DEFAULT 80,
    threshold_storage_percentage integer DEFAULT 80, grace_cluster_percentage integer DEFAULT 20,
    grace_storage_percentage integer DEFAULT 20, is_default boolean NOT NULL DEFAULT false,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE TABLE quota_limitation (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    quota_id uuid NOT NULL REFERENCES quota ON DELETE CASCADE, storage_id uuid,
    cluster_id uuid REFERENCES cluster ON DELETE CASCADE, virtual_cpu integer, mem_size_mb bigint, storage_size_gb bigint);
CREATE TABLE providers (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(128) NOT NULL UNIQUE,
    description varchar(4000), url varchar(512) NOT NULL, provider_type varchar(32) NOT NULL,
    auth_required boolean NOT NULL DEFAULT false, auth_username varchar(64), auth_password text, custom_properties text,
    tenant_name varchar(128), plugin_type varchar(64), auth_url text, read_only boolean NOT NULL DEFAULT false,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE libvirt_secrets (secret_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), secret_value text NOT NULL,
    secret_usage_type integer NOT NULL, secret_description text,
    provider_id uuid NOT NULL REFERENCES providers ON DELETE CASCADE, _create_date timestamptz NOT NULL DEFAULT now(),
    _update_date timestamptz);

-- ---------------------------------------------------------------- hosts
CREATE TABLE vds_static (vds_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), vds_name text NOT NULL UNIQUE,
    host_name text NOT NULL, port integer NOT NULL DEFAULT 54321, created timestamptz NOT NULL DEFAULT now(),
    vds_unique_id varchar(128), cluster_id uuid REFERENCES cluster, server_ssl_enabled boolean DEFAULT true,
    vds_type integer NOT NULL DEFAULT 0, pm_enabled boolean NOT NULL DEFAULT false, otp_validity bigint,
    vds_spm_priority smallint DEFAULT 5 CHECK (vds_spm_priority BETWEEN -1 AND 10), ssh_username varchar(255) DEFAULT 'root',
    ssh_port integer DEFAULT 22, free_text_comment text, host_provider_id uuid REFERENCES providers ON DELETE SET NULL,
    kernel_cmdline text, _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE TABLE vds_dynamic (vds_id uuid PRIMARY KEY REFERENCES vds_static ON DELETE CASCADE, status integer NOT NULL DEFAULT 0,
    cpu_cores integer, cpu_model varchar(255), cpu_speed_mh numeric(18,0), physical_mem_mb integer,
    mem_commited integer DEFAULT 0, vm_active integer DEFAULT 0, vm_count integer NOT NULL DEFAULT 0,
    software_version varchar(40), cpu_flags text, host_os varchar(4000), kvm_version varchar(4000),
    kernel_version varchar(4000), libvirt_version varchar(4000), supported_cluster_levels varchar(40),
    hardware_uuid varchar(255), _update_date timestamptz);
CREATE TABLE vds_statistics (vds_id uuid PRIMARY KEY REFERENCES vds_static ON DELETE CASCADE,
    cpu_idle numeric(18,0) DEFAULT 0, cpu_load numeric(18,0) DEFAULT 0, cpu_sys numeric(18,0) DEFAULT 0,
    cpu_user numeric(18,0) DEFAULT 0, usage_mem_percent integer DEFAULT 0, usage_cpu_percent integer DEFAULT 0,
    mem_free bigint, swap_free bigint, swap_total bigint, ha_score integer, ha_configured boolean NOT NULL DEFAULT false,
    ha_active boolean NOT NULL DEFAULT false, ha_global_maintenance boolean NOT NULL DEFAULT false,
    ha_local_maintenance boolean NOT NULL DEFAULT false, boot_time bigint, _update_date timestamptz);
CREATE TABLE vds_interface (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50) NOT NULL,
    network_name varchar(256), vds_id uuid REFERENCES vds_static ON DELETE CASCADE, mac_addr varchar(59),
    is_bond boolean DEFAULT false, bond_name varchar(50), bond_opts varchar(4000), vlan_id integer, speed integer,
    addr varchar(20), subnet varchar(20), gateway varchar(20), boot_protocol integer, mtu integer,
    bridged boolean NOT NULL DEFAULT true, base_interface varchar(50), _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE UNIQUE INDEX idx_vds_interface_vds_id_name ON vds_interface (vds_id, name);
CREATE TABLE vds_interface_statistics (id uuid PRIMARY KEY REFERENCES vds_interface ON DELETE CASCADE,
    vds_id uuid REFERENCES vds_static ON DELETE CASCADE, rx_rate numeric(24,4), tx_rate numeric(24,4), rx_drop numeric(18,0),
    tx_drop numeric(18,0), rx_total numeric(20,0), tx_total numeric(20,0), iface_status integer,
    sample_time double precision, _update_date timestamptz);
CREATE TABLE vds_kdump_status (vds_id uuid PRIMARY KEY REFERENCES vds_static ON DELETE CASCADE, status varchar(20) NOT NULL,
    address varchar(255) NOT NULL);
CREATE TABLE vds_spm_id_map (vds_id uuid PRIMARY KEY REFERENCES vds_static ON DELETE CASCADE,
    storage_pool_id uuid NOT NULL REFERENCES storage_pool ON DELETE CASCADE, vds_spm_id integer NOT NULL);
CREATE UNIQUE INDEX idx_vds_spm_id_map_pool_spm ON vds_spm_id_map (storage_pool_id, vds_spm_id);
CREATE TABLE supported_host_features (host_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE,
    feature_name varchar(256) NOT NULL, PRIMARY KEY (host_id, feature_name));
CREATE TABLE fence_agents (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, agent_order integer NOT NULL, ip varchar(255) NOT NULL,
    type varchar(255) NOT NULL, agent_user varchar(255) NOT NULL, agent_password text, port integer,
    options text NOT NULL DEFAULT '', encrypt_options boolean NOT NULL DEFAULT false);
CREATE TABLE host_device (host_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, device_name varchar(255) NOT NULL,
    parent_device_name varchar(255) NOT NULL, capability varchar(32) NOT NULL, iommu_group integer,
    product_name varchar(255), product_id varchar(255), vendor_name varchar(255), vendor_id varchar(255),
    physfn varchar(255), total_vfs integer, vm_id uuid, driver varchar(255), is_assignable boolean NOT NULL DEFAULT true,
    PRIMARY KEY (host_id, device_name));
CREATE TABLE numa_node (numa_node_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vds_id uuid REFERENCES vds_static ON DELETE CASCADE, vm_id uuid, numa_node_index smallint, mem_total bigint,
    cpu_count smallint, mem_free bigint, usage_mem_percent integer, usage_cpu_percent integer, distance text,
    hugepages text);
CREATE TABLE numa_node_cpu_map (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    numa_node_id uuid NOT NULL REFERENCES numa_node ON DELETE CASCADE, cpu_core_id integer);
CREATE TABLE storage_server_connection_extension (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, iqn varchar(128) NOT NULL, user_name text NOT NULL,
    password text NOT NULL);
CREATE TABLE host_nic_vfs_config (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    nic_id uuid NOT NULL REFERENCES vds_interface ON DELETE CASCADE, is_all_networks_allowed boolean NOT NULL,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE TABLE vfs_config_labels (vfs_config_id uuid NOT NULL REFERENCES host_nic_vfs_config ON DELETE CASCADE,
    label text NOT NULL, _create_date timestamptz DEFAULT now(), _update_date timestamptz,
    PRIMARY KEY (vfs_config_id, label));
CREATE TABLE provider_binding_host_id (vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE,
    plugin_type varchar(64) NOT NULL, binding_host_id varchar(64) NOT NULL, PRIMARY KEY (vds_id, plugin_type));
CREATE TABLE dns_resolver_configuration (id uuid PRIMARY KEY DEFAULT uuid_generate_v4());
CREATE TABLE name_server (
    dns_resolver_configuration_id uuid NOT NULL REFERENCES dns_resolver_configuration ON DELETE CASCADE,
    address varchar(45) NOT NULL, position smallint NOT NULL, PRIMARY KEY (dns_resolver_configuration_id, address));

-- ---------------------------------------------------------------- networks
CREATE TABLE network_filter (filter_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), filter_name varchar(50) NOT NULL UNIQUE,
    version varchar(40));
CREATE TABLE network (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(256) NOT NULL, description varchar(4000),
    type integer, addr varchar(50), subnet varchar(20), gateway varchar(20), vlan_id integer,
    stp boolean NOT NULL DEFAULT false, storage_pool_id uuid REFERENCES storage_pool ON DELETE CASCADE, mtu integer,
    vm_network boolean NOT NULL DEFAULT true, provider_network_provider_id uuid REFERENCES providers ON DELETE CASCADE,
    provider_network_external_id text, free_text_comment text, label text, qos_id uuid REFERENCES qos ON DELETE SET NULL,
    dns_resolver_configuration_id uuid REFERENCES dns_resolver_configuration ON DELETE SET NULL,
    port_isolation boolean DEFAULT false);
CREATE UNIQUE INDEX idx_network_name_pool ON network (name, storage_pool_id);
CREATE TABLE network_cluster (network_id uuid NOT NULL REFERENCES network ON DELETE CASCADE,
    cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE, status integer NOT NULL DEFAULT 0,
    is_display boolean NOT NULL DEFAULT false, required boolean NOT NULL DEFAULT true,
    migration boolean NOT NULL DEFAULT false, management boolean NOT NULL DEFAULT false,
    is_gluster boolean NOT NULL DEFAULT false, default_route boolean NOT NULL DEFAULT false,
    PRIMARY KEY (network_id, cluster_id));
CREATE TABLE network_attachments (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    network_id uuid NOT NULL REFERENCES network ON DELETE CASCADE, nic_id uuid REFERENCES vds_interface ON DELETE CASCADE,
    boot_protocol varchar(20), address varchar(20), netmask varchar(20), gateway varchar(20), custom_properties text,
    ipv6_boot_protocol varchar(20), ipv6_address varchar(50), ipv6_prefix integer, ipv6_gateway varchar(50),
    dns_resolver_configuration_id uuid REFERENCES dns_resolver_configuration ON DELETE SET NULL,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE UNIQUE INDEX idx_network_attachments_nic_network ON network_attachments (network_id, nic_id);
CREATE TABLE vnic_profiles (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50) NOT NULL,
    network_id uuid NOT NULL REFERENCES network ON DELETE CASCADE, port_mirroring boolean NOT NULL DEFAULT false,
    custom_properties text, description text, network_qos_id uuid REFERENCES qos ON DELETE SET NULL,
    passthrough boolean NOT NULL DEFAULT false, migratable boolean NOT NULL DEFAULT true,
    network_filter_id uuid REFERENCES network_filter ON DELETE SET NULL, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE vfs_config_networks (vfs_config_id uuid NOT NULL REFERENCES host_nic_vfs_config ON DELETE CASCADE,
    network_id uuid NOT NULL REFERENCES network ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz, PRIMARY KEY (vfs_config_id, network_id));
CREATE TABLE iscsi_bonds (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50) NOT NULL,
    description varchar(4000), storage_pool_id uuid NOT NULL REFERENCES storage_pool ON DELETE CASCADE);
CREATE TABLE iscsi_bonds_networks_map (iscsi_bond_id uuid NOT NULL REFERENCES iscsi_bonds ON DELETE CASCADE,
    network_id uuid NOT NULL REFERENCES network ON DELETE CASCADE, PRIMARY KEY (iscsi_bond_id, network_id));

-- ---------------------------------------------------------------- storage
CREATE TABLE storage_server_connections (id varchar(50) PRIMARY KEY, connection varchar(250) NOT NULL, user_name text,
    password text, iqn varchar(128), port varchar(50), portal varchar(50), storage_type integer NOT NULL,
    mount_options varchar(500), vfs_type varchar(128), nfs_version varchar(4), nfs_timeo smallint, nfs_retrans smallint,
    gluster_volume_id uuid);
CREATE INDEX idx_storage_server_connections_iqn ON storage_server_connections (iqn);
CREATE TABLE iscsi_bonds_storage_connections_map (iscsi_bond_id uuid NOT NULL REFERENCES iscsi_bonds ON DELETE CASCADE,
    connection_id varchar(50) NOT NULL REFERENCES storage_server_connections ON DELETE CASCADE,
    PRIMARY KEY (iscsi_bond_id, connection_id));
CREATE TABLE luns (lun_id varchar(255) PRIMARY KEY, physical_volume_id varchar(50), volume_group_id varchar(50),
    serial varchar(4000), lun_mapping integer, vendor_id varchar(50), product_id varchar(50), device_size integer DEFAULT 0,
    discard_max_size bigint);
CREATE TABLE lun_storage_server_connection_map (lun_id varchar(255) NOT NULL REFERENCES luns ON DELETE CASCADE,
    storage_server_connection varchar(50) NOT NULL REFERENCES storage_server_connections ON DELETE CASCADE,
    PRIMARY KEY (lun_id, storage_server_connection));
CREATE TABLE storage_domain_static (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), storage varchar(250) NOT NULL,
    storage_name varchar(250) NOT NULL, storage_domain_type integer NOT NULL, storage_type integer NOT NULL,
    storage_domain_format_type varchar(50) NOT NULL DEFAULT '5', recoverable boolean NOT NULL DEFAULT true,
    last_time_used_as_master bigint, storage_description varchar(4000), storage_comment text,
    wipe_after_delete boolean NOT NULL DEFAULT false, discard_after_delete boolean NOT NULL DEFAULT false,
    warning_low_space_indicator integer, critical_space_action_blocker integer, backup boolean NOT NULL DEFAULT false,
    block_size integer DEFAULT 512, _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE UNIQUE INDEX idx_storage_domain_static_name ON storage_domain_static (storage_name);
CREATE TABLE storage_domain_dynamic (id uuid PRIMARY KEY REFERENCES storage_domain_static ON DELETE CASCADE,
    available_disk_size integer, used_disk_size integer, confirmed_available_disk_size integer,
    external_status integer NOT NULL DEFAULT 0, _update_date timestamptz);
CREATE TABLE storage_pool_iso_map (storage_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE,
    storage_pool_id uuid NOT NULL REFERENCES storage_pool ON DELETE CASCADE, status integer,
    PRIMARY KEY (storage_id, storage_pool_id));
CREATE TABLE storage_domain_dr (storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE,
    georep_session_id uuid NOT NULL, sync_schedule varchar(256), gluster_scheduler_job_id varchar(256),
    PRIMARY KEY (storage_domain_id, georep_session_id));
CREATE TABLE disk_profiles (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(50) NOT NULL,
    storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE,
    qos_id uuid REFERENCES qos ON DELETE SET NULL, description text, _create_date timestamptz NOT NULL DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE repo_file_meta_data (repo_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE,
    repo_image_id varchar(256) NOT NULL, size bigint DEFAULT 0, date_created timestamptz DEFAULT now(),
    last_refreshed bigint DEFAULT 0, file_type integer DEFAULT 0, repo_image_name varchar(256),
    PRIMARY KEY (repo_domain_id, repo_image_id));
CREATE TABLE mb_storage (id uuid PRIMARY KEY REFERENCES storage_domain_static ON DELETE CASCADE,
    driver_options jsonb NOT NULL DEFAULT '{}', driver_sensitive_options text, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE external_leases (lease_id uuid PRIMARY KEY,
    storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE);
CREATE TABLE unregistered_ovf_of_entities (entity_guid uuid NOT NULL, entity_name varchar(255) NOT NULL,
    entity_type varchar(32) NOT NULL, architecture integer, lowest_comp_version varchar(40),
    storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE, ovf_data text, ovf_extra_data text,
    status integer DEFAULT 0, PRIMARY KEY (entity_guid, storage_domain_id));
CREATE TABLE unregistered_disks (disk_id uuid NOT NULL, disk_alias varchar(255), disk_description varchar(255),
    storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE, creation_date timestamptz,
    last_modified timestamptz, volume_type integer, volume_format integer, actual_size bigint, size bigint, image_id uuid,
    content_type integer NOT NULL DEFAULT 0, PRIMARY KEY (disk_id, storage_domain_id));
CREATE TABLE unregistered_disks_to_vms (disk_id uuid NOT NULL, entity_id uuid NOT NULL, entity_name varchar(255),
    storage_domain_id uuid NOT NULL, PRIMARY KEY (disk_id, entity_id, storage_domain_id),
    FOREIGN KEY (disk_id, storage_domain_id) REFERENCES unregistered_disks ON DELETE CASCADE);

-- ---------------------------------------------------------------- VMs
CREATE TABLE vm_icons (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), data_url varchar(32768) NOT NULL);
CREATE UNIQUE INDEX idx_vm_icons_data_url ON vm_icons (md5(data_url));
CREATE TABLE vm_static (vm_guid uuid PRIMARY KEY DEFAULT uuid_generate_v4(), vm_name text NOT NULL,
    mem_size_mb integer NOT NULL, num_of_cpus integer NOT NULL, run_on_vds uuid REFERENCES vds_static (vds_id),
    description text, vmt_guid uuid REFERENCES vm_static (vm_guid), os integer NOT NULL DEFAULT 0,
    cluster_id uuid REFERENCES cluster, entity_type varchar(32) NOT NULL DEFAULT 'VM',
    creation_date timestamptz DEFAULT now(), num_of_monitors integer NOT NULL DEFAULT 1,
    num_of_sockets integer NOT NULL DEFAULT 1, cpu_per_socket integer NOT NULL DEFAULT 1, is_stateless boolean DEFAULT false,
    auto_startup boolean DEFAULT false, vm_type integer NOT NULL DEFAULT 0, priority integer NOT NULL DEFAULT 0,
    origin integer DEFAULT 0, migration_support integer NOT NULL DEFAULT 0, min_allocated_mem integer NOT NULL DEFAULT 0,
    quota_id uuid REFERENCES quota ON DELETE SET NULL, cpu_profile_id uuid REFERENCES cpu_profiles ON DELETE SET NULL,
    lease_sd_id uuid, free_text_comment text, custom_emulated_machine varchar(40), bios_type integer,
    small_icon_id uuid REFERENCES vm_icons, large_icon_id uuid REFERENCES vm_icons, _create_date timestamptz DEFAULT now(),
    _update_date timestamptz);
CREATE INDEX vm_static_run_on_vds ON vm_static (run_on_vds);
CREATE INDEX idx_vm_static_vm_name ON vm_static (vm_name);
CREATE TABLE vm_dynamic (vm_guid uuid PRIMARY KEY REFERENCES vm_static ON DELETE CASCADE, status integer NOT NULL DEFAULT 0,
    vm_ip text, vm_host varchar(255), vm_pid integer, last_start_time timestamptz, last_stop_time timestamptz,
    guest_cur_user_name varchar(255), guest_os varchar(255), run_on_vds uuid REFERENCES vds_static ON DELETE SET NULL,
    migrating_to_vds uuid, app_list text, acpi_enable boolean, session integer, utc_diff integer, client_ip varchar(255),
    exit_status integer NOT NULL DEFAULT 0, pause_status integer NOT NULL DEFAULT 0, exit_message varchar(4000),
    hash varchar(30), console_user_id uuid, vm_fqdn text DEFAULT '', cpu_name varchar(255), emulated_machine varchar(255),
    spice_port integer, vnc_port integer, guest_agent_status integer DEFAULT 0, _update_date timestamptz);
CREATE TABLE vm_statistics (vm_guid uuid PRIMARY KEY REFERENCES vm_static ON DELETE CASCADE,
    cpu_user numeric(18,0) DEFAULT 0, cpu_sys numeric(18,0) DEFAULT 0, elapsed_time numeric(18,0) DEFAULT 0,
    usage_network_percent integer DEFAULT 0, usage_mem_percent integer DEFAULT 0, usage_cpu_percent integer DEFAULT 0,
    disks_usage text, migration_progress_percent integer DEFAULT 0, memory_usage_history text, cpu_usage_history text,
    network_usage_history text, guest_mem_buffered bigint, guest_mem_cached bigint, _update_date timestamptz);
CREATE TABLE vm_interface (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vm_guid uuid REFERENCES vm_static ON DELETE CASCADE, mac_addr varchar(20), name varchar(50) NOT NULL, speed integer,
    type integer DEFAULT 0, linked boolean NOT NULL DEFAULT true,
    vnic_profile_id uuid REFERENCES vnic_profiles ON DELETE SET NULL, synced boolean NOT NULL DEFAULT true,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE INDEX idx_vm_interface_mac_addr ON vm_interface (mac_addr);
CREATE TABLE vm_interface_statistics (id uuid PRIMARY KEY REFERENCES vm_interface ON DELETE CASCADE,
    vm_id uuid REFERENCES vm_static ON DELETE CASCADE, rx_rate numeric(24,4), tx_rate numeric(24,4), rx_drop numeric(18,0),
    tx_drop numeric(18,0), rx_total numeric(20,0), tx_total numeric(20,0), iface_status integer,
    sample_time double precision, _update_date timestamptz);
CREATE TABLE vm_interface_filter_parameters (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(255) NOT NULL,
    value varchar(255) NOT NULL, vm_interface_id uuid NOT NULL REFERENCES vm_interface ON DELETE CASCADE);
CREATE TABLE vm_device (device_id uuid NOT NULL, vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE,
    type varchar(30) NOT NULL, device varchar(255) NOT NULL, address varchar(255) NOT NULL DEFAULT '', spec_params text,
    is_managed boolean NOT NULL DEFAULT false, is_plugged boolean, is_readonly boolean NOT NULL DEFAULT false,
    alias varchar(255) DEFAULT '', custom_properties text, snapshot_id uuid, logical_name varchar(255),
    host_device varchar(255), _create_date timestamptz DEFAULT now(), _update_date timestamptz,
    PRIMARY KEY (device_id, vm_id));
CREATE INDEX idx_vm_device_type_device ON vm_device (type, device);
CREATE TABLE vm_init (vm_id uuid PRIMARY KEY REFERENCES vm_static ON DELETE CASCADE, host_name text, domain text,
    authorized_keys text, regenerate_keys boolean DEFAULT false, time_zone varchar(40), dns_servers text,
    dns_search_domains text, networks text, password text, custom_script text, user_name text, org_name text,
    cloud_init_network_protocol varchar(32));
CREATE TABLE vm_guest_agent_interfaces (vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, interface_name text,
    mac_address varchar(59), ipv4_addresses text[], ipv6_addresses text[]);
CREATE TABLE vm_host_pinning_map (vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE,
    vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE,
    CONSTRAINT vm_host_pinning_map_vm_id_vds_id_key UNIQUE (vm_id, vds_id));
CREATE TABLE vm_icon_defaults (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), os_id integer NOT NULL UNIQUE,
    small_icon_id uuid NOT NULL REFERENCES vm_icons ON DELETE CASCADE,
    large_icon_id uuid NOT NULL REFERENCES vm_icons ON DELETE CASCADE);
CREATE TABLE vm_jobs (vm_job_id uuid PRIMARY KEY, vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE,
    job_state integer NOT NULL DEFAULT 0, job_type integer NOT NULL, block_job_type integer, bandwidth integer,
    cursor_cur bigint, cursor_end bigint, image_group_id uuid);
CREATE TABLE vm_ovf_generations (vm_guid uuid PRIMARY KEY, storage_pool_id uuid REFERENCES storage_pool ON DELETE CASCADE,
    ovf_generation bigint DEFAULT 0, ovf_data text);
CREATE TABLE vm_pools (vm_pool_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), vm_pool_name varchar(255) NOT NULL,
    vm_pool_description varchar(4000) NOT NULL DEFAULT '', vm_pool_comment text, vm_pool_type integer,
    parameters varchar(200), prestarted_vms smallint DEFAULT 0, cluster_id uuid REFERENCES cluster ON DELETE SET NULL,
    max_assigned_vms_per_user smallint DEFAULT 1, spice_proxy varchar(255),
    is_being_destroyed boolean NOT NULL DEFAULT false, stateful boolean NOT NULL DEFAULT false,
    is_auto_storage_select boolean NOT NULL DEFAULT false);
CREATE TABLE vm_pool_map (vm_guid uuid PRIMARY KEY REFERENCES vm_static ON DELETE CASCADE,
    vm_pool_id uuid REFERENCES vm_pools ON DELETE CASCADE);
CREATE TABLE vm_vds_numa_node_map (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vm_numa_node_id uuid NOT NULL REFERENCES numa_node ON DELETE CASCADE,
    vds_numa_node_id uuid REFERENCES numa_node ON DELETE SET NULL, vds_numa_node_index smallint,
    is_pinned boolean NOT NULL DEFAULT false);
CREATE TABLE snapshots (snapshot_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, snapshot_type varchar(32) NOT NULL,
    status varchar(32) NOT NULL, description varchar(4000), creation_date timestamptz NOT NULL DEFAULT now(), app_list text,
    vm_configuration text, memory_metadata_disk_id uuid, memory_dump_disk_id uuid, changed_fields text,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE TABLE vm_backups (backup_id uuid PRIMARY KEY, from_checkpoint_id uuid, to_checkpoint_id uuid,
    vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, phase text NOT NULL, host_id uuid, description varchar(1024),
    is_live_backup boolean NOT NULL DEFAULT true, _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE vm_checkpoints (checkpoint_id uuid PRIMARY KEY, parent_id uuid,
    vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, _create_date timestamptz NOT NULL DEFAULT now(),
    state varchar(32), description varchar(1024));
CREATE TABLE vm_external_data (device_id uuid NOT NULL, vm_id uuid NOT NULL, data text NOT NULL, hash varchar(128),
    PRIMARY KEY (device_id, vm_id), FOREIGN KEY (device_id, vm_id) REFERENCES vm_device ON DELETE CASCADE);
CREATE TABLE vm_nvram_data (vm_id uuid PRIMARY KEY REFERENCES vm_static ON DELETE CASCADE, nvram_data text,
    nvram_hash varchar(128));

-- Hosts' NUMA nodes, and VMs' virtual ones.
ALTER TABLE numa_node ADD CONSTRAINT numa_node_vm_id_fkey FOREIGN KEY (vm_id) REFERENCES vm_static ON DELETE CASCADE;

-- ---------------------------------------------------------------- disks
CREATE TABLE base_disks (disk_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    wipe_after_delete boolean NOT NULL DEFAULT false, propagate_errors varchar(32) NOT NULL DEFAULT 'Off',
    disk_alias varchar(255), disk_description varchar(500), shareable boolean DEFAULT false, sgio smallint,
    disk_storage_type smallint, cinder_volume_type varchar(255), disk_content_type smallint NOT NULL DEFAULT 0,
    backup varchar(32) DEFAULT 'None', backup_mode varchar(32));
CREATE TABLE images (image_guid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    creation_date timestamptz NOT NULL DEFAULT now(), size bigint NOT NULL,
    it_guid uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', parentid uuid, imagestatus integer DEFAULT 0,
    lastmodified timestamptz, vm_snapshot_id uuid REFERENCES snapshots ON DELETE SET NULL,
    volume_type integer NOT NULL DEFAULT 2, volume_format integer NOT NULL DEFAULT 4,
    image_group_id uuid REFERENCES base_disks ON DELETE CASCADE, active boolean NOT NULL DEFAULT false,
    volume_classification smallint, qcow_compat integer DEFAULT 0, sequence_number integer NOT NULL DEFAULT 0,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE INDEX idx_images_it_guid ON images (it_guid);
CREATE INDEX idx_images_parentid ON images (parentid);
CREATE TABLE disk_image_dynamic (image_id uuid PRIMARY KEY REFERENCES images ON DELETE CASCADE, read_rate integer,
    write_rate integer, actual_size bigint NOT NULL DEFAULT 0, read_latency_seconds numeric(18,9),
    write_latency_seconds numeric(18,9), flush_latency_seconds numeric(18,9), read_ops bigint, write_ops bigint,
    _update_date timestamptz);
CREATE TABLE image_storage_domain_map (image_id uuid NOT NULL REFERENCES images ON DELETE CASCADE,
    storage_domain_id uuid NOT NULL REFERENCES storage_domain_static ON DELETE CASCADE,
    quota_id uuid REFERENCES quota ON DELETE SET NULL, disk_profile_id uuid REFERENCES disk_profiles ON DELETE SET NULL,
    PRIMARY KEY (image_id, storage_domain_id));
CREATE TABLE disk_vm_element (disk_id uuid NOT NULL REFERENCES base_disks ON DELETE CASCADE,
    vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, is_boot boolean NOT NULL DEFAULT false,
    disk_interface varchar(32) NOT NULL DEFAULT 'VirtIO_SCSI', pass_discard boolean NOT NULL DEFAULT false,
    PRIMARY KEY (vm_id, disk_id));
CREATE TABLE disk_lun_map (disk_id uuid NOT NULL REFERENCES base_disks ON DELETE CASCADE,
    lun_id varchar(255) NOT NULL REFERENCES luns, PRIMARY KEY (disk_id, lun_id));
CREATE TABLE storage_domains_ovf_info (ovf_disk_id uuid PRIMARY KEY REFERENCES base_disks ON DELETE CASCADE,
    storage_domain_id uuid REFERENCES storage_domain_static ON DELETE CASCADE, status integer DEFAULT 0,
    stored_ovfs_ids text, last_updated timestamptz);
CREATE TABLE vm_backup_disk_map (backup_id uuid NOT NULL REFERENCES vm_backups ON DELETE CASCADE,
    disk_id uuid NOT NULL REFERENCES base_disks ON DELETE CASCADE, backup_url text,
    is_incremental boolean NOT NULL DEFAULT false, PRIMARY KEY (backup_id, disk_id));
CREATE TABLE vm_checkpoint_disk_map (checkpoint_id uuid NOT NULL REFERENCES vm_checkpoints ON DELETE CASCADE,
    disk_id uuid NOT NULL REFERENCES base_disks ON DELETE CASCADE, PRIMARY KEY (checkpoint_id, disk_id));

-- ---------------------------------------------------------------- events, audit
CREATE TABLE audit_log (audit_log_id bigint PRIMARY KEY DEFAULT nextval('audit_log_seq'), log_time timestamptz NOT NULL,
    severity integer NOT NULL, message text NOT NULL, vm_id uuid, user_id uuid, user_name varchar(255), vm_name varchar(255),
    vm_template_id uuid, vm_template_name varchar(40), vds_id uuid, vds_name varchar(255),
    log_type_name varchar(100) DEFAULT '', log_type integer NOT NULL DEFAULT 0, processed boolean NOT NULL DEFAULT false,
    storage_pool_id uuid, storage_pool_name varchar(40), storage_domain_id uuid, storage_domain_name varchar(250),
    cluster_id uuid, cluster_name varchar(255), correlation_id varchar(50), job_id uuid, quota_id uuid,
    quota_name varchar(60), gluster_volume_id uuid, gluster_volume_name varchar(1000), origin varchar(255) DEFAULT 'oVirt',
    custom_event_id integer DEFAULT -1, event_flood_in_sec integer DEFAULT 30, custom_data text DEFAULT '',
    deleted boolean DEFAULT false, call_stack text DEFAULT '', brick_id uuid, brick_path text DEFAULT '');
-- audit_log's indexes come after its rows (below).
CREATE TABLE event_map (event_up_name varchar(100) PRIMARY KEY, event_down_name varchar(100) NOT NULL);
CREATE TABLE event_subscriber (subscriber_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    event_up_name varchar(100) NOT NULL,
    notification_method varchar(32) NOT NULL CHECK (notification_method IN ('smtp', 'snmp')), method_address varchar(255),
    tag_name varchar(50));
-- Unique, but tag_name may be NULL: no replica identity.
CREATE UNIQUE INDEX idx_event_subscriber_unique ON event_subscriber (subscriber_id, event_up_name, notification_method, tag_name);
CREATE TABLE event_notification_hist (event_name varchar(100) NOT NULL,
    audit_log_id bigint NOT NULL REFERENCES audit_log ON DELETE CASCADE, method_type char(10) NOT NULL,
    sent_at timestamptz NOT NULL, status boolean NOT NULL, reason char(255),
    subscriber_id uuid REFERENCES users ON DELETE CASCADE);
CREATE INDEX idx_event_notification_hist_audit_log_id ON event_notification_hist (audit_log_id);
CREATE INDEX idx_event_notification_hist_sent_at ON event_notification_hist (sent_at);

-- ---------------------------------------------------------------- jobs, tasks, commands
CREATE TABLE job (job_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), action_type varchar(50) NOT NULL,
    description text NOT NULL, status varchar(32) NOT NULL, owner_id uuid, visible boolean NOT NULL DEFAULT true,
    start_time timestamptz NOT NULL, end_time timestamptz, last_update_time timestamptz, correlation_id varchar(50),
    is_external boolean DEFAULT false, is_auto_cleared boolean DEFAULT true, engine_session_seq_id bigint);
CREATE INDEX idx_job_start_time ON job (start_time);
CREATE TABLE step (step_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    parent_step_id uuid REFERENCES step ON DELETE CASCADE, job_id uuid NOT NULL REFERENCES job ON DELETE CASCADE,
    step_type varchar(32) NOT NULL, description text NOT NULL, step_number integer NOT NULL, status varchar(32) NOT NULL,
    progress smallint, start_time timestamptz NOT NULL, end_time timestamptz, correlation_id varchar(50), external_id uuid,
    external_system_type varchar(32), is_external boolean DEFAULT false);
CREATE TABLE job_subject_entity (job_id uuid NOT NULL REFERENCES job ON DELETE CASCADE, entity_id uuid NOT NULL,
    entity_type varchar(32) NOT NULL, PRIMARY KEY (job_id, entity_id));
CREATE TABLE step_subject_entity (step_id uuid NOT NULL REFERENCES step ON DELETE CASCADE, entity_id uuid NOT NULL,
    entity_type varchar(32) NOT NULL, step_entity_weight smallint, PRIMARY KEY (step_id, entity_id));
CREATE TABLE command_entities (command_id uuid PRIMARY KEY, command_type integer NOT NULL, root_command_id uuid,
    command_parameters text, command_params_class varchar(256), created_at timestamptz, status varchar(20),
    callback_enabled boolean DEFAULT false, callback_notified boolean DEFAULT false, return_value text,
    return_value_class varchar(256), job_id uuid, step_id uuid, executed boolean DEFAULT false, user_id uuid,
    parent_command_id uuid, data text, engine_session_seq_id bigint);
CREATE TABLE command_assoc_entities (command_id uuid NOT NULL REFERENCES command_entities ON DELETE CASCADE,
    entity_id uuid NOT NULL, entity_type varchar(128), PRIMARY KEY (command_id, entity_id));
CREATE TABLE image_transfers (command_id uuid PRIMARY KEY REFERENCES command_entities ON DELETE CASCADE,
    command_type integer NOT NULL, phase integer NOT NULL, last_updated timestamptz NOT NULL, message varchar, vds_id uuid,
    disk_id uuid, imaged_ticket_id uuid, proxy_uri varchar, bytes_sent bigint, bytes_total bigint, type integer,
    active boolean, daemon_uri varchar, client_inactivity_timeout integer, image_format integer, backend integer,
    backup_id uuid, client_type integer, shallow boolean NOT NULL DEFAULT false);
CREATE TABLE async_tasks (task_id uuid PRIMARY KEY, action_type integer NOT NULL, status integer NOT NULL,
    result integer NOT NULL, step_id uuid, command_id uuid NOT NULL, root_command_id uuid, started_at timestamptz,
    storage_pool_id uuid, task_type integer NOT NULL DEFAULT 0, vdsm_task_id uuid, user_id uuid);
CREATE TABLE async_tasks_entities (async_task_id uuid NOT NULL REFERENCES async_tasks ON DELETE CASCADE,
    entity_id uuid NOT NULL, entity_type varchar(128));
CREATE TABLE business_entity_snapshot (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), command_id uuid NOT NULL,
    command_type varchar(256) NOT NULL, entity_id varchar(128), entity_type varchar(128), entity_snapshot text,
    snapshot_class varchar(128), snapshot_type integer,
    insertion_order integer NOT NULL DEFAULT nextval('business_entity_snapshot_seq'), started_at timestamptz DEFAULT now());
CREATE UNIQUE INDEX idx_business_entity_snapshot_unique ON business_entity_snapshot (command_id, command_type, entity_id, entity_type, snapshot_type);

-- ---------------------------------------------------------------- tags, labels, bookmarks, affinity
CREATE TABLE tags (tag_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), tag_name varchar(50) NOT NULL DEFAULT '',
    description varchar(4000), parent_id uuid, readonly boolean, type integer NOT NULL DEFAULT 0,
    _create_date timestamptz DEFAULT now(), _update_date timestamptz);
CREATE TABLE tags_user_group_map (tag_id uuid NOT NULL REFERENCES tags ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES ad_groups ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    PRIMARY KEY (tag_id, group_id));
CREATE TABLE tags_user_map (tag_id uuid NOT NULL REFERENCES tags ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    PRIMARY KEY (tag_id, user_id));
CREATE TABLE tags_vds_map (tag_id uuid NOT NULL REFERENCES tags ON DELETE CASCADE,
    vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    PRIMARY KEY (tag_id, vds_id));
CREATE TABLE tags_vm_map (tag_id uuid NOT NULL REFERENCES tags ON DELETE CASCADE,
    vm_id uuid NOT NULL REFERENCES vm_static ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    defaultdisplaytype integer DEFAULT 0, PRIMARY KEY (tag_id, vm_id));
CREATE TABLE tags_vm_pool_map (tag_id uuid NOT NULL REFERENCES tags ON DELETE CASCADE,
    vm_pool_id uuid NOT NULL REFERENCES vm_pools ON DELETE CASCADE, _create_date timestamptz DEFAULT now(),
    PRIMARY KEY (tag_id, vm_pool_id));
CREATE TABLE bookmarks (bookmark_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), bookmark_name varchar(40),
    bookmark_value varchar(300) NOT NULL);
CREATE TABLE labels (label_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), label_name varchar(50) NOT NULL UNIQUE,
    read_only boolean NOT NULL DEFAULT false, has_implicit_affinity_group boolean NOT NULL DEFAULT false);
CREATE TABLE labels_map (label_id uuid NOT NULL REFERENCES labels ON DELETE CASCADE,
    vm_id uuid REFERENCES vm_static ON DELETE CASCADE, vds_id uuid REFERENCES vds_static ON DELETE CASCADE);
-- Unique, but partial: no replica identity.
CREATE UNIQUE INDEX idx_labels_map_label_vm ON labels_map (label_id, vm_id) WHERE vm_id IS NOT NULL;
CREATE INDEX idx_labels_map_vds_id ON labels_map (vds_id);
CREATE TABLE affinity_groups (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name varchar(128) NOT NULL,
    description varchar(4000), cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE,
    vm_positive boolean DEFAULT true, vm_enforcing boolean NOT NULL DEFAULT true, vds_positive boolean DEFAULT true,
    vds_enforcing boolean NOT NULL DEFAULT true, vms_affinity_enabled boolean NOT NULL DEFAULT true,
    vds_affinity_enabled boolean NOT NULL DEFAULT false, priority bigint NOT NULL DEFAULT 1,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE affinity_group_members (affinity_group_id uuid NOT NULL REFERENCES affinity_groups ON DELETE CASCADE,
    vm_id uuid REFERENCES vm_static ON DELETE CASCADE, vds_id uuid REFERENCES vds_static ON DELETE CASCADE,
    vm_label_id uuid REFERENCES labels ON DELETE CASCADE, host_label_id uuid REFERENCES labels ON DELETE CASCADE);

-- ---------------------------------------------------------------- gluster
CREATE TABLE gluster_server (server_id uuid PRIMARY KEY REFERENCES vds_static ON DELETE CASCADE,
    gluster_server_uuid uuid NOT NULL, known_addresses varchar(250), peer_status varchar(50) NOT NULL DEFAULT 'CONNECTED');
CREATE TABLE gluster_volumes (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE, vol_name varchar(1000) NOT NULL,
    vol_type varchar(32) NOT NULL, status varchar(32) NOT NULL, replica_count integer NOT NULL DEFAULT 0,
    stripe_count integer NOT NULL DEFAULT 0, disperse_count integer NOT NULL DEFAULT 0,
    redundancy_count integer NOT NULL DEFAULT 0, task_id uuid, snapshot_count integer NOT NULL DEFAULT 0,
    snapshot_scheduled boolean NOT NULL DEFAULT false, is_arbiter boolean NOT NULL DEFAULT false,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE UNIQUE INDEX idx_gluster_volumes_name ON gluster_volumes (cluster_id, vol_name);
CREATE TABLE gluster_volume_details (volume_id uuid PRIMARY KEY REFERENCES gluster_volumes ON DELETE CASCADE,
    total_space bigint, used_space bigint, free_space bigint, confirmed_free_space bigint, vdo_savings integer,
    _update_date timestamptz NOT NULL DEFAULT now());
CREATE TABLE gluster_volume_bricks (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE,
    server_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, brick_dir varchar(4096) NOT NULL,
    status varchar(32) NOT NULL, brick_order integer DEFAULT 0, task_id uuid,
    network_id uuid REFERENCES network ON DELETE SET NULL, unsynced_entries integer, is_arbiter boolean DEFAULT false,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE UNIQUE INDEX idx_gluster_volume_bricks_server_dir ON gluster_volume_bricks (server_id, brick_dir);
CREATE TABLE gluster_volume_brick_details (brick_id uuid PRIMARY KEY REFERENCES gluster_volume_bricks ON DELETE CASCADE,
    total_space bigint, used_space bigint, free_space bigint, _update_date timestamptz NOT NULL DEFAULT now());
CREATE TABLE gluster_volume_options (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE, option_key varchar(8192) NOT NULL,
    option_val varchar(8192) NOT NULL);
CREATE TABLE gluster_volume_access_protocols (volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE,
    access_protocol varchar(32) NOT NULL, PRIMARY KEY (volume_id, access_protocol));
CREATE TABLE gluster_volume_transport_types (volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE,
    transport_type varchar(32) NOT NULL, PRIMARY KEY (volume_id, transport_type));
CREATE TABLE gluster_volume_snapshots (snapshot_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE, snapshot_name varchar(1000) NOT NULL,
    description varchar(1024), status varchar(32), _create_date timestamptz NOT NULL DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE gluster_volume_snapshot_config (cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE,
    volume_id uuid REFERENCES gluster_volumes ON DELETE CASCADE, param_name varchar(128) NOT NULL, param_value varchar(128),
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
-- Unique, but volume_id is NULL for cluster-wide settings: no replica identity.
CREATE UNIQUE INDEX idx_gluster_volume_snapshot_config_unique ON gluster_volume_snapshot_config (cluster_id, volume_id, param_name);
CREATE TABLE gluster_volume_snapshot_schedules (volume_id uuid PRIMARY KEY REFERENCES gluster_volumes ON DELETE CASCADE,
    job_id varchar(256), snapshot_name_prefix varchar(128), snapshot_description varchar(1024),
    recurrence varchar(128) NOT NULL, time_zone varchar(128), "interval" integer, start_date timestamptz,
    execution_time time, days varchar(256), end_by timestamptz, _create_date timestamptz NOT NULL DEFAULT now(),
    _update_date timestamptz);
CREATE TABLE gluster_hooks (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE, gluster_command varchar(128) NOT NULL,
    stage varchar(50) NOT NULL, name varchar(256) NOT NULL, hook_status varchar(50), content_type varchar(50),
    checksum varchar(256), content text, conflict_status integer NOT NULL DEFAULT 0,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE UNIQUE INDEX idx_gluster_hooks_unique ON gluster_hooks (cluster_id, gluster_command, stage, name);
CREATE TABLE gluster_server_hooks (hook_id uuid NOT NULL REFERENCES gluster_hooks ON DELETE CASCADE,
    server_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, hook_status varchar(50), content_type varchar(50),
    checksum varchar(256), _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
-- The one unique index here on NOT NULL columns, not partial: usable as replica identity.
CREATE UNIQUE INDEX idx_gluster_server_hooks_unique ON gluster_server_hooks (hook_id, server_id);
CREATE TABLE gluster_service_types (service_type varchar(100) PRIMARY KEY);
CREATE TABLE gluster_services (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    service_type varchar(100) NOT NULL REFERENCES gluster_service_types ON DELETE CASCADE,
    service_name varchar(100) NOT NULL UNIQUE);
CREATE TABLE gluster_server_services (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    server_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE,
    service_id uuid NOT NULL REFERENCES gluster_services ON DELETE CASCADE, pid integer, status varchar(32) NOT NULL,
    message varchar(1000), _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE gluster_cluster_services (cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE,
    service_type varchar(100) NOT NULL REFERENCES gluster_service_types ON DELETE CASCADE, status varchar(32) NOT NULL,
    _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz, PRIMARY KEY (cluster_id, service_type));
CREATE TABLE gluster_config_master (config_key varchar(50) PRIMARY KEY, config_description varchar(300),
    minimum_supported_cluster varchar(50), config_possible_values varchar(50), config_feature varchar(50));
CREATE TABLE gluster_georep_session (session_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    master_volume_id uuid NOT NULL REFERENCES gluster_volumes ON DELETE CASCADE, session_key varchar(150) NOT NULL,
    slave_host_uuid uuid, slave_host_name varchar(50), slave_volume_id uuid, slave_volume_name varchar(50),
    status varchar(50), user_name varchar(255), _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);
CREATE TABLE gluster_georep_config (session_id uuid NOT NULL REFERENCES gluster_georep_session ON DELETE CASCADE,
    config_key varchar(50) NOT NULL, config_value varchar(50), _update_date timestamptz,
    PRIMARY KEY (session_id, config_key));
CREATE TABLE gluster_georep_session_details (session_id uuid NOT NULL REFERENCES gluster_georep_session ON DELETE CASCADE,
    master_brick_id uuid NOT NULL REFERENCES gluster_volume_bricks ON DELETE CASCADE, slave_host_uuid uuid,
    slave_host_name varchar(50) NOT NULL, status varchar(20), checkpoint_status varchar(20), crawl_status varchar(20),
    data_pending bigint, entry_pending bigint, meta_pending bigint, failures bigint, last_synced_at timestamptz,
    checkpoint_time timestamptz, is_checkpoint_completed boolean, _update_date timestamptz,
    PRIMARY KEY (session_id, master_brick_id));
CREATE TABLE gluster_global_volume_options (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    cluster_id uuid NOT NULL REFERENCES cluster ON DELETE CASCADE, option_key varchar(8192) NOT NULL,
    option_val varchar(8192) NOT NULL);
CREATE TABLE gluster_scheduler_job_details (job_id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    job_name varchar(100) NOT NULL, job_class_name varchar(100) NOT NULL, cron_schedule varchar(100), start_date timestamptz,
    end_date timestamptz, timezone varchar(100));
CREATE TABLE gluster_scheduler_job_params (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    job_id uuid NOT NULL REFERENCES gluster_scheduler_job_details ON DELETE CASCADE, params_class_name varchar(100) NOT NULL,
    params_class_value text NOT NULL);
CREATE TABLE storage_device (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name text NOT NULL, device_uuid varchar(38),
    filesystem_uuid varchar(38), vds_id uuid NOT NULL REFERENCES vds_static ON DELETE CASCADE, description text,
    device_type varchar(50), device_path text, filesystem_type varchar(50), mount_point text, size bigint, is_free boolean,
    is_gluster_brick boolean DEFAULT false, _create_date timestamptz NOT NULL DEFAULT now(), _update_date timestamptz);

-- ================================================================ seed data
INSERT INTO schema_version (version, script, checksum, current)
SELECT '04_05_' || lpad(g::text, 4, '0'), 'upgrade/04_05_' || lpad(g::text, 4, '0') || '.sql', md5(g::text), g = 400
FROM generate_series(10, 400, 10) g;
INSERT INTO vdc_options (option_name, option_value, version)
SELECT split_part(o, '=', 1), split_part(o, '=', 2), coalesce(nullif(split_part(o, '=', 3), ''), 'general')
FROM unnest(string_to_array('AuditLogAgingThreshold=30 AuditLogCleanupTime=03:35:35 AsyncTaskPollingRate=10 '
    'AsyncTaskZombieTaskLifeInMinutes=3000 ConfigDir=/etc/ovirt-engine DataDir=/usr/share/ovirt-engine DBEngine=Postgres '
    'DisconnectDwh=0 EngineMode=ACTIVE FenceKdumpListenerHost= FenceKdumpListenerPort=7410 FenceStartStatusRetries=3 '
    'HostTimeDriftInSec=300 ImageTransferClientTicketValidityInSeconds=3600 InstallVds=true KdumpStartedTimeout=30 '
    'MaxAuditLogMessageLength=10000 MaxVdsMemOverCommit=200 OvfUpdateIntervalInMinutes=60 ProductRPMVersion=4.5.6 '
    'SearchResultsLimit=100 ServerRebootTimeout=600 SpmCommandFailOverRetries=3 SSLEnabled=true '
    'StoragePoolRefreshTimeInSeconds=10 SupportedClusterLevels=4.2,4.3,4.4,4.5,4.6,4.7 UploadImageChunkSizeKB=8192 '
    'UserSessionTimeOutInterval=30 VdcVersion=4.5.6.0 VdsRefreshRate=3 VdsTimeout=180 MaxNumOfVmCpus=384=4.6 '
    'MaxNumOfVmCpus=512=4.7 MaxNumOfVmSockets=16=4.6 MaxNumOfVmSockets=16=4.7 VM64BitMaxMemorySizeInMB=6291456=4.6 '
    'VM64BitMaxMemorySizeInMB=6291456=4.7 EnableMACAntiSpoofingFilterRules=true=4.7', ' ')) o;
INSERT INTO external_variable VALUES
    ('fence-kdump-listener-heartbeat', to_char(now(), 'YYYY-MM-DD HH24:MI:SS.MSOF'), now()),
    ('dwh-engine-version', '4.5.6', now());
INSERT INTO dwh_history_timekeeping VALUES
    ('lastSync', NULL, now() - interval '1 minute'), ('heartBeat', NULL, now()),
    ('dwhHostname', 'engine.example.com', NULL), ('dwhUuid', uuid_generate_v4()::text, NULL),
    ('lastFullHostCheck', NULL, now() - interval '1 hour');
INSERT INTO dwh_osinfo VALUES (0, 'other'), (5, 'other_linux'), (24, 'rhel_8x64'), (33, 'rhel_9x64'), (27, 'windows_2019x64');
INSERT INTO users (user_id, name, surname, domain, username, email, external_id) VALUES
    ('fdfc627c-d875-11e0-90f0-83df133b58cc', 'admin', NULL, 'internal-authz', 'admin', 'root@localhost', '6b1d3f4e-0d0b-4a43-a4d0-3a1b5c1a2f10'),
    (uuid_generate_v4(), 'Jürgen', 'Müller', 'example.com', 'jmuller', 'jurgen.muller@example.com', 'jmuller-1001'),
    (uuid_generate_v4(), 'Ana', 'Nuñez', 'example.com', 'anunez', 'ana.nunez@example.com', 'anunez-1002');
INSERT INTO mac_pools (name, description, default_pool) VALUES ('Default', 'Default MAC pool', true), ('lab', NULL, false), ('dmz', NULL, false);
INSERT INTO cluster_policies (id, name, is_locked, is_default) VALUES
    ('b4ed2332-a7ac-4d5f-9596-99a439cb2812', 'none', true, false),
    ('20d25257-b4bd-4589-92a6-c4c5c5d3fd1a', 'evenly_distributed', true, true),
    ('5a2b0939-7d46-4b73-a469-e9c2c7fc6a53', 'power_saving', true, false);
INSERT INTO storage_pool (name, description, is_local, mac_pool_id, status)
SELECT n, 'data center ' || n, false, (SELECT id FROM mac_pools WHERE default_pool), 1 FROM unnest(ARRAY['Default', 'dc-east', 'dc-west']) n;
INSERT INTO cluster (name, description, cpu_name, storage_pool_id, cluster_policy_id, mac_pool_id)
SELECT n, 'cluster ' || n, 'Secure Intel Cascadelake Server Family', sp.id,
       '20d25257-b4bd-4589-92a6-c4c5c5d3fd1a', sp.mac_pool_id
FROM unnest(ARRAY['Default', 'cluster-east', 'cluster-west']) WITH ORDINALITY u(n, i)
JOIN storage_pool sp ON sp.name = (ARRAY['Default', 'dc-east', 'dc-west'])[u.i];
INSERT INTO vds_static (vds_name, host_name, cluster_id, vds_unique_id)
SELECT 'host' || g, 'host' || g || '.example.com', (SELECT cluster_id FROM cluster WHERE name = 'Default'), uuid_generate_v4()::text
FROM generate_series(1, 5) g;
INSERT INTO vds_dynamic (vds_id, status, cpu_cores, cpu_model, physical_mem_mb, vm_count, software_version, host_os, kvm_version)
SELECT vds_id, 3, 32, 'Intel(R) Xeon(R) Gold 6230', 393216, 40, '4.50', 'RHEL - 8.9 - 1.el8', '6.2.0' FROM vds_static;
INSERT INTO vds_statistics (vds_id, usage_mem_percent, usage_cpu_percent, mem_free, swap_total, boot_time)
SELECT vds_id, 40, 15, 200000, 8192, extract(epoch FROM now())::bigint - 86400 FROM vds_static;
INSERT INTO vm_static (vm_name, mem_size_mb, num_of_cpus, run_on_vds, description, cluster_id, os)
SELECT 'vm' || g, 1024 * (1 + g % 8), 1 + g % 4,
       (SELECT vds_id FROM vds_static ORDER BY vds_name OFFSET g % 5 LIMIT 1), 'Ünïcödé VM ' || g,
       (SELECT cluster_id FROM cluster WHERE name = 'Default'), (ARRAY[0, 5, 24, 33, 27])[1 + g % 5]
FROM generate_series(1, 200) g;
INSERT INTO vm_dynamic (vm_guid, status, run_on_vds, vm_host, vm_ip, last_start_time, guest_os)
SELECT vm_guid, CASE WHEN run_on_vds IS NULL THEN 0 ELSE 1 END, run_on_vds, vm_name || '.example.com',
       '10.1.' || (substr(vm_name, 3)::int / 250) || '.' || (substr(vm_name, 3)::int % 250 + 1), now() - interval '3 days', 'Linux'
FROM vm_static;
INSERT INTO vm_statistics (vm_guid, usage_mem_percent, usage_cpu_percent, elapsed_time, memory_usage_history, cpu_usage_history)
SELECT vm_guid, 35, 7, 259200, '30,31,35,34', '5,9,7,6' FROM vm_static;
INSERT INTO audit_log (log_time, severity, message, vm_id, vm_name, vds_name, log_type, log_type_name, correlation_id)
SELECT now() - g * interval '1 minute', (ARRAY[2, 0, 0, 0, 0])[k],
       format((ARRAY['VM %s is down with error. Exit message: User shut down from within the guest',
                     'VM %s started on Host host%s', 'VM %s powered off by admin@internal-authz (Host: host%s).',
                     'Migration completed (VM: %s, Destination: host%s)',
                     'Host host%2$s power management was verified successfully.'])[k], v.vm_name, 1 + g % 5),
       v.vm_guid, v.vm_name, 'host' || (1 + g % 5), (ARRAY[119, 153, 33, 63, 9])[k],
       (ARRAY['VM_DOWN_ERROR', 'USER_STARTED_VM', 'USER_STOP_VM', 'VM_MIGRATION_DONE', 'VDS_FENCE_STATUS'])[k],
       CASE WHEN k IN (2, 3) THEN md5('correlation' || g) END
FROM generate_series(1, 20000) g CROSS JOIN LATERAL (SELECT 1 + g % 5 AS k) x
LEFT JOIN (SELECT vm_guid, vm_name, row_number() OVER (ORDER BY vm_guid) AS n FROM vm_static) v
       ON v.n = CASE WHEN x.k < 5 THEN 1 + g % 200 END;
CREATE INDEX audit_log_time ON audit_log (log_time);
CREATE INDEX idx_audit_log_vm_id ON audit_log (vm_id);
CREATE INDEX idx_audit_log_vds_id ON audit_log (vds_id);
CREATE INDEX idx_audit_log_storage_domain_name ON audit_log (storage_domain_name);
CREATE INDEX idx_audit_log_correlation_id ON audit_log (correlation_id);
CREATE INDEX idx_audit_log_job_id ON audit_log (job_id);
CREATE INDEX idx_audit_log_origin_custom_event_id ON audit_log (origin, custom_event_id) WHERE origin NOT IN ('oVirt', 'ovirt');
INSERT INTO vm_guest_agent_interfaces (vm_id, interface_name, mac_address, ipv4_addresses, ipv6_addresses)
SELECT v.vm_guid, 'eth' || i, format('56:6f:1a:%s:%s:%s', lpad(to_hex(i), 2, '0'), lpad(to_hex(n / 256), 2, '0'), lpad(to_hex(n % 256), 2, '0')),
       ARRAY['10.' || (1 + i) || '.0.' || n], ARRAY['fe80::' || to_hex(n) || ':' || i]
FROM (SELECT vm_guid, substr(vm_name, 3)::int AS n FROM vm_static) v, generate_series(0, 1) i
WHERE v.n <= 50;
INSERT INTO vm_host_pinning_map (vm_id, vds_id)
SELECT v.vm_guid, h.vds_id FROM vm_static v JOIN vds_static h ON h.vds_id = v.run_on_vds
WHERE substr(v.vm_name, 3)::int <= 20
UNION ALL
SELECT v.vm_guid, (SELECT vds_id FROM vds_static WHERE vds_id <> v.run_on_vds ORDER BY vds_name LIMIT 1)
FROM vm_static v WHERE substr(v.vm_name, 3)::int <= 10;

-- Every other table: three rows each, in creation order (parents first), from the catalog:
-- a foreign key takes the parent's (g-1)th row, a column with a default its default,
-- anything else a value of its type.
DO $seed$
DECLARE
    r record;
    nonempty boolean;
BEGIN
    FOR r IN
        WITH fk AS (
            SELECT DISTINCT ON (con.conrelid, con.conkey[k]) con.conrelid, con.conkey[k] AS attnum,
                   con.confrelid::regclass AS parent, pa.attname AS pcol,
                   (SELECT string_agg(quote_ident(x.attname), ', ') FROM pg_attribute x
                    WHERE x.attrelid = con.confrelid AND x.attnum = ANY (con.confkey)) AS porder
            FROM pg_constraint con CROSS JOIN LATERAL generate_subscripts(con.conkey, 1) k
            JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[k]
            WHERE con.connamespace = 'public'::regnamespace AND con.contype = 'f'
            ORDER BY con.conrelid, con.conkey[k], con.oid),
        col AS (
            SELECT c.oid, a.attnum, a.attname,
                   CASE WHEN fk.conrelid = fk.parent THEN NULL  -- a self reference stays NULL
                   WHEN fk.parent IS NOT NULL THEN
                       format('(SELECT %I FROM %s ORDER BY %s OFFSET (g - 1) %% (SELECT count(*) FROM %2$s) LIMIT 1)',
                              fk.pcol, fk.parent, fk.porder)
                   WHEN a.atthasdef THEN NULL
                   ELSE CASE format_type(a.atttypid, NULL)
                       WHEN 'uuid' THEN 'uuid_generate_v4()'
                       WHEN 'boolean' THEN '(g % 2 = 0)'
                       WHEN 'timestamp with time zone' THEN $$now() - g * interval '1 day'$$
                       WHEN 'time without time zone' THEN $$time '01:30' + g * interval '1 hour'$$
                       WHEN 'jsonb' THEN $${}$$
                       WHEN 'text' THEN format('%L || g', a.attname || ' ')
                       WHEN 'character varying' THEN CASE WHEN a.atttypmod > 4
                           THEN format('left(%L || g, %s)', a.attname || ' ', a.atttypmod - 4) ELSE format('%L || g', a.attname || ' ') END
                       WHEN 'character' THEN format('left(%L || g, %s)', a.attname || ' ', a.atttypmod - 4)
                       ELSE 'g' END  -- the numbers
                   END AS expr
            FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            LEFT JOIN fk ON fk.conrelid = c.oid AND fk.attnum = a.attnum
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
              AND c.relname NOT IN ('affinity_group_members', 'async_tasks_entities', 'cluster_policy_units',
                  'event_notification_hist', 'event_subscriber', 'gluster_server_hooks', 'gluster_volume_snapshot_config',
                  'labels_map', 'mac_pool_ranges'))
        SELECT oid::regclass AS t, string_agg(quote_ident(attname), ', ' ORDER BY attnum) FILTER (WHERE expr IS NOT NULL) AS cols,
               string_agg(expr, ', ' ORDER BY attnum) FILTER (WHERE expr IS NOT NULL) AS vals
        FROM col GROUP BY oid ORDER BY oid
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s)', r.t) INTO nonempty;
        CONTINUE WHEN nonempty;
        IF r.cols IS NULL THEN  -- only defaults
            EXECUTE format('INSERT INTO %1$s DEFAULT VALUES; INSERT INTO %1$s DEFAULT VALUES; INSERT INTO %1$s DEFAULT VALUES', r.t);
        ELSE
            EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM generate_series(1, 3) g', r.t, r.cols, r.vals);
        END IF;
    END LOOP;
END
$seed$;

-- The tables without a primary key that need the generic rows above.
INSERT INTO mac_pool_ranges (mac_pool_id, from_mac, to_mac)
SELECT id, format('56:6f:1a:%s:00:00', lpad(to_hex(n::int), 2, '0')), format('56:6f:1a:%s:ff:ff', lpad(to_hex(n::int), 2, '0'))
FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM mac_pools) p;
INSERT INTO cluster_policy_units (cluster_policy_id, policy_unit_id, filter_sequence, factor)
SELECT cp.id, pu.id, 0, 1 + (row_number() OVER ()) % 3 FROM cluster_policies cp, policy_units pu;
INSERT INTO async_tasks_entities (async_task_id, entity_id, entity_type)
SELECT t.task_id, s.id, 'Storage' FROM async_tasks t, (SELECT id FROM storage_domain_static LIMIT 2) s;
INSERT INTO event_subscriber (subscriber_id, event_up_name, notification_method, method_address, tag_name)
SELECT u.user_id, e, m, CASE WHEN m = 'smtp' THEN u.email END, CASE WHEN e = 'VM_DOWN_ERROR' THEN 'prod' END
FROM users u, unnest(ARRAY['VDC_STOP', 'VM_DOWN_ERROR', 'HOST_INTERFACE_STATE_DOWN']) e, unnest(ARRAY['smtp', 'snmp']) m
WHERE u.username IN ('admin', 'jmuller');
INSERT INTO event_notification_hist (event_name, audit_log_id, method_type, sent_at, status, reason, subscriber_id)
SELECT 'VM_DOWN_ERROR', a.audit_log_id, 'smtp', a.log_time + interval '5 seconds', a.audit_log_id % 10 <> 0,
       CASE WHEN a.audit_log_id % 10 = 0 THEN 'Failed to send message' END,
       (SELECT user_id FROM users WHERE username = 'admin')
FROM audit_log a WHERE a.log_type = 119 ORDER BY a.audit_log_id LIMIT 50;
INSERT INTO gluster_server_hooks (hook_id, server_id, hook_status, content_type, checksum)
SELECT h.id, s.vds_id, 'ENABLED', 'TEXT', md5(h.id::text || s.vds_id::text)
FROM gluster_hooks h, (SELECT vds_id FROM vds_static ORDER BY vds_name LIMIT 2) s;
INSERT INTO gluster_volume_snapshot_config (cluster_id, volume_id, param_name, param_value)
SELECT c.cluster_id, NULL, p, v FROM cluster c, (VALUES ('snap-max-hard-limit', '256'), ('snap-max-soft-limit', '90'),
       ('auto-delete', 'disable')) x(p, v) WHERE c.gluster_service OR c.name = 'Default'
UNION ALL
SELECT v.cluster_id, v.id, 'snap-max-hard-limit', '128' FROM gluster_volumes v;
INSERT INTO labels_map (label_id, vm_id, vds_id)
SELECT l.label_id, v.vm_guid, NULL::uuid FROM (SELECT label_id FROM labels ORDER BY label_name LIMIT 2) l,
       (SELECT vm_guid FROM vm_static ORDER BY vm_name LIMIT 5) v
UNION ALL
SELECT (SELECT label_id FROM labels ORDER BY label_name DESC LIMIT 1), NULL, vds_id FROM vds_static;
INSERT INTO affinity_group_members (affinity_group_id, vm_id, vds_id, vm_label_id, host_label_id)
SELECT g.id, v.vm_guid, NULL::uuid, NULL::uuid, NULL::uuid FROM (SELECT id FROM affinity_groups ORDER BY name LIMIT 1) g,
       (SELECT vm_guid FROM vm_static ORDER BY vm_name LIMIT 4) v
UNION ALL
SELECT g.id, NULL, h.vds_id, NULL, NULL FROM (SELECT id FROM affinity_groups ORDER BY name OFFSET 1 LIMIT 1) g,
       (SELECT vds_id FROM vds_static ORDER BY vds_name LIMIT 2) h
UNION ALL
SELECT g.id, NULL, NULL, l.label_id, NULL FROM (SELECT id FROM affinity_groups ORDER BY name OFFSET 2 LIMIT 1) g,
       (SELECT label_id FROM labels ORDER BY label_name LIMIT 1) l;

-- ================================================================ secondary indexes
-- Up to 387 indexes in all (primary keys and the unique ones above included): first the
-- referencing columns of each foreign key that no index starts with, then columns the
-- engine searches by name, status, type or time.
DO $idx$
DECLARE
    target constant integer := 387;
    n integer;
    r record;
    iname text;
BEGIN
    SELECT count(*) INTO n FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid WHERE c.relnamespace = 'public'::regnamespace;
    FOR r IN
        SELECT * FROM (
            SELECT con.conrelid::regclass AS tbl,
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k) FROM generate_subscripts(con.conkey, 1) k
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[k]) AS cols,
                   (SELECT string_agg(a.attname, '_' ORDER BY k) FROM generate_subscripts(con.conkey, 1) k
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[k]) AS colnames
            FROM pg_constraint con
            WHERE con.connamespace = 'public'::regnamespace AND con.contype = 'f'
              AND NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = con.conrelid
                              AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)] = con.conkey)
            ORDER BY con.conrelid, con.conname) fks
        UNION ALL
        SELECT * FROM (
            SELECT a.attrelid::regclass, quote_ident(a.attname), a.attname
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname ~ '(^|_)(name|status|type|date|time|correlation_id|entity_id|command_id)$'
              AND a.atttypid <> 'boolean'::regtype
              AND NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = a.attrelid AND x.indkey[0] = a.attnum)
            ORDER BY a.attrelid, a.attnum) names
    LOOP
        EXIT WHEN n >= target;
        iname := left('idx_' || r.tbl::text || '_' || r.colnames, 63);
        CONTINUE WHEN to_regclass(quote_ident(iname)) IS NOT NULL;
        EXECUTE format('CREATE INDEX %I ON %s (%s)', iname, r.tbl, r.cols);
        n := n + 1;
    END LOOP;
END
$idx$;

-- ================================================================ views
CREATE VIEW vms AS
SELECT s.vm_guid, s.vm_name, s.mem_size_mb, s.num_of_cpus, s.description, s.os, s.vmt_guid, s.entity_type, s.cluster_id,
       c.name AS cluster_name, c.compatibility_version AS cluster_compatibility_version, sp.id AS storage_pool_id,
       sp.name AS storage_pool_name, d.status, d.vm_ip, d.vm_host, d.run_on_vds, h.vds_name AS run_on_vds_name,
       d.last_start_time, d.last_stop_time, d.guest_os, d.vm_fqdn, st.usage_cpu_percent, st.usage_mem_percent,
       st.usage_network_percent, st.elapsed_time, s.quota_id, q.quota_name, s.is_stateless, s.auto_startup, s.priority,
       s._create_date, s._update_date
FROM vm_static s JOIN vm_dynamic d ON d.vm_guid = s.vm_guid JOIN vm_statistics st ON st.vm_guid = s.vm_guid
LEFT JOIN cluster c ON c.cluster_id = s.cluster_id LEFT JOIN storage_pool sp ON sp.id = c.storage_pool_id
LEFT JOIN vds_static h ON h.vds_id = d.run_on_vds LEFT JOIN quota q ON q.id = s.quota_id
WHERE s.entity_type = 'VM';
CREATE VIEW vm_templates_view AS
SELECT s.vm_guid AS vmt_guid, s.vm_name AS name, s.mem_size_mb, s.num_of_cpus, s.os, s.description, s.cluster_id,
       c.name AS cluster_name, s.entity_type, s.creation_date,
       (SELECT count(*) FROM vm_static v WHERE v.vmt_guid = s.vm_guid) AS child_count
FROM vm_static s LEFT JOIN cluster c ON c.cluster_id = s.cluster_id
WHERE s.entity_type IN ('TEMPLATE', 'INSTANCE_TYPE', 'IMAGE_TYPE');
CREATE VIEW vds AS
SELECT s.vds_id, s.vds_name, s.host_name, s.port, s.vds_unique_id, s.cluster_id, c.name AS cluster_name,
       c.compatibility_version AS cluster_compatibility_version, sp.id AS storage_pool_id, sp.name AS storage_pool_name,
       s.vds_type, s.pm_enabled, s.vds_spm_priority, s.ssh_port, s.ssh_username, s.free_text_comment, d.status, d.cpu_cores,
       d.cpu_model, d.physical_mem_mb, d.vm_count, d.software_version, d.host_os, d.kvm_version, st.usage_cpu_percent,
       st.usage_mem_percent, st.mem_free, st.ha_score, st.boot_time, m.vds_spm_id
FROM vds_static s JOIN vds_dynamic d ON d.vds_id = s.vds_id JOIN vds_statistics st ON st.vds_id = s.vds_id
LEFT JOIN cluster c ON c.cluster_id = s.cluster_id LEFT JOIN storage_pool sp ON sp.id = c.storage_pool_id
LEFT JOIN vds_spm_id_map m ON m.vds_id = s.vds_id;
CREATE VIEW cluster_view AS
SELECT c.*, sp.name AS storage_pool_name, cp.name AS cluster_policy_name, mp.name AS mac_pool_name
FROM cluster c LEFT JOIN storage_pool sp ON sp.id = c.storage_pool_id
LEFT JOIN cluster_policies cp ON cp.id = c.cluster_policy_id LEFT JOIN mac_pools mp ON mp.id = c.mac_pool_id;
CREATE VIEW storage_domains AS
SELECT s.id, s.storage, s.storage_name, s.storage_description, s.storage_comment, s.storage_domain_type, s.storage_type,
       s.storage_domain_format_type, s.wipe_after_delete, s.discard_after_delete, s.backup, s.block_size,
       d.available_disk_size, d.used_disk_size, d.external_status, m.status, m.storage_pool_id,
       sp.name AS storage_pool_name, s._create_date, s._update_date
FROM storage_domain_static s JOIN storage_domain_dynamic d ON d.id = s.id
LEFT JOIN storage_pool_iso_map m ON m.storage_id = s.id LEFT JOIN storage_pool sp ON sp.id = m.storage_pool_id;
CREATE VIEW images_storage_domain_view AS
SELECT i.image_guid, i.creation_date, i.size, i.it_guid, i.parentid, i.imagestatus, i.lastmodified, i.vm_snapshot_id,
       i.volume_type, i.volume_format, i.image_group_id, i.active, b.disk_alias, b.disk_description, b.shareable,
       b.disk_content_type, m.storage_domain_id AS storage_id, sd.storage_name, m.quota_id, q.quota_name,
       m.disk_profile_id, dp.name AS disk_profile_name, dd.actual_size, dd.read_rate, dd.write_rate
FROM images i JOIN base_disks b ON b.disk_id = i.image_group_id JOIN image_storage_domain_map m ON m.image_id = i.image_guid
JOIN storage_domain_static sd ON sd.id = m.storage_domain_id LEFT JOIN quota q ON q.id = m.quota_id
LEFT JOIN disk_profiles dp ON dp.id = m.disk_profile_id LEFT JOIN disk_image_dynamic dd ON dd.image_id = i.image_guid;
CREATE VIEW all_disks AS
SELECT b.*, i.image_guid, i.size, i.imagestatus, i.volume_format, dd.actual_size,
       (SELECT count(*) FROM disk_vm_element e WHERE e.disk_id = b.disk_id) AS number_of_vms,
       (SELECT string_agg(v.vm_name, ',') FROM disk_vm_element e JOIN vm_static v ON v.vm_guid = e.vm_id
        WHERE e.disk_id = b.disk_id) AS vm_names
FROM base_disks b LEFT JOIN images i ON i.image_group_id = b.disk_id AND i.active
LEFT JOIN disk_image_dynamic dd ON dd.image_id = i.image_guid;
CREATE VIEW network_view AS
SELECT n.*, sp.name AS storage_pool_name, sp.compatibility_version, q.name AS qos_name, p.name AS provider_name
FROM network n LEFT JOIN storage_pool sp ON sp.id = n.storage_pool_id LEFT JOIN qos q ON q.id = n.qos_id
LEFT JOIN providers p ON p.id = n.provider_network_provider_id;
CREATE VIEW vm_interface_view AS
SELECT i.id, i.vm_guid, i.mac_addr, i.name, i.speed, i.type, i.linked, i.synced, i.vnic_profile_id,
       vp.name AS vnic_profile_name, n.name AS network_name, vp.port_mirroring, vp.passthrough, s.rx_rate, s.tx_rate,
       s.rx_total, s.tx_total, s.iface_status, v.vm_name, v.entity_type, v.cluster_id
FROM vm_interface i JOIN vm_static v ON v.vm_guid = i.vm_guid LEFT JOIN vm_interface_statistics s ON s.id = i.id
LEFT JOIN vnic_profiles vp ON vp.id = i.vnic_profile_id LEFT JOIN network n ON n.id = vp.network_id;
CREATE VIEW vdc_users AS
SELECT 'user'::varchar(10) AS user_group, u.name, u.surname, u.domain, u.username, u.email, u.user_id, u.external_id, u.namespace
FROM users u
UNION ALL
SELECT 'group', g.name, '', g.domain, '', '', g.id, g.external_id, g.namespace FROM ad_groups g;
CREATE VIEW permissions_view AS
SELECT p.*, r.name AS role_name, r.role_type, r.allows_viewing_children, r.app_mode,
       coalesce(u.user_and_domain, g.name) AS owner_name, coalesce(u.namespace, g.namespace) AS namespace
FROM permissions p JOIN roles r ON r.id = p.role_id
LEFT JOIN users u ON u.user_id = p.ad_element_id LEFT JOIN ad_groups g ON g.id = p.ad_element_id;
CREATE VIEW affinity_groups_view AS
SELECT g.*, array_agg(m.vm_id) FILTER (WHERE m.vm_id IS NOT NULL) AS vm_ids,
       array_agg(v.vm_name) FILTER (WHERE m.vm_id IS NOT NULL) AS vm_names,
       array_agg(m.vds_id) FILTER (WHERE m.vds_id IS NOT NULL) AS vds_ids,
       array_agg(h.vds_name) FILTER (WHERE m.vds_id IS NOT NULL) AS vds_names
FROM affinity_groups g LEFT JOIN affinity_group_members m ON m.affinity_group_id = g.id
LEFT JOIN vm_static v ON v.vm_guid = m.vm_id LEFT JOIN vds_static h ON h.vds_id = m.vds_id
GROUP BY g.id;
CREATE VIEW gluster_volumes_view AS
SELECT v.*, c.name AS cluster_name, d.total_space, d.used_space, d.free_space,
       (SELECT count(*) FROM gluster_volume_bricks b WHERE b.volume_id = v.id) AS brick_count
FROM gluster_volumes v JOIN cluster c ON c.cluster_id = v.cluster_id LEFT JOIN gluster_volume_details d ON d.volume_id = v.id;
CREATE VIEW event_audit_log_subscriber_view AS
SELECT s.subscriber_id, s.event_up_name, s.notification_method, s.method_address, s.tag_name,
       a.audit_log_id, a.log_time, a.severity, a.message, a.vm_id, a.vds_id
FROM event_subscriber s JOIN audit_log a ON a.log_type_name = s.event_up_name WHERE NOT a.processed AND NOT a.deleted;
-- What the DWH reads.
CREATE VIEW dwh_datacenter_configuration_history_view AS
SELECT id AS datacenter_id, name AS datacenter_name, description AS datacenter_description, is_local AS is_local_storage,
       compatibility_version, _create_date AS create_date, _update_date AS update_date
FROM storage_pool;
CREATE VIEW dwh_host_configuration_history_view AS
SELECT s.vds_id AS host_id, s.vds_unique_id AS host_unique_id, s.vds_name AS host_name, s.cluster_id, s.host_name AS fqdn_or_ip,
       d.physical_mem_mb AS memory_size_mb, d.cpu_model, d.cpu_cores AS number_of_cores, d.host_os, d.kvm_version,
       s._create_date AS create_date, s._update_date AS update_date
FROM vds_static s JOIN vds_dynamic d ON d.vds_id = s.vds_id;
CREATE VIEW dwh_vm_configuration_history_view AS
SELECT vm_guid AS vm_id, vm_name, description AS vm_description, cluster_id, vmt_guid AS template_id, os AS operating_system,
       num_of_cpus AS cpu_per_socket, num_of_sockets AS number_of_sockets, mem_size_mb AS memory_size_mb,
       is_stateless AS stateless, run_on_vds AS default_host, creation_date, _create_date AS create_date,
       _update_date AS update_date
FROM vm_static WHERE entity_type = 'VM';

-- Then, up to 147 views, one per referencing table: its rows with the parent's name.
DO $views$
DECLARE
    target constant integer := 147;
    n integer;
    r record;
    lbl text;
    vname text;
    cond text;
BEGIN
    SELECT count(*) INTO n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'v';
    FOR r IN SELECT con.conrelid, con.confrelid, con.conkey, con.confkey, c.relname AS child, p.relname AS parent
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class p ON p.oid = con.confrelid
             WHERE con.connamespace = 'public'::regnamespace AND con.contype = 'f' AND con.conrelid <> con.confrelid
             ORDER BY con.conrelid, con.conname LOOP
        EXIT WHEN n >= target;
        vname := r.child || '_view';
        IF to_regclass(vname) IS NOT NULL THEN
            vname := left(r.child || '_' || r.parent || '_view', 63);
            CONTINUE WHEN to_regclass(quote_ident(vname)) IS NOT NULL;
        END IF;
        SELECT a.attname INTO lbl FROM pg_attribute a
        WHERE a.attrelid = r.confrelid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)
          AND NOT EXISTS (SELECT FROM pg_attribute b WHERE b.attrelid = r.conrelid AND b.attname = r.parent || '_' || a.attname)
        ORDER BY a.attnum LIMIT 1;
        CONTINUE WHEN lbl IS NULL;
        SELECT string_agg(format('p.%I = c.%I', pa.attname, ca.attname), ' AND ') INTO cond
        FROM generate_subscripts(r.conkey, 1) k
        JOIN pg_attribute ca ON ca.attrelid = r.conrelid AND ca.attnum = r.conkey[k]
        JOIN pg_attribute pa ON pa.attrelid = r.confrelid AND pa.attnum = r.confkey[k];
        EXECUTE format('CREATE VIEW %I AS SELECT c.*, p.%I AS %I FROM %I c LEFT JOIN %I p ON %s',
                       vname, lbl, left(r.parent || '_' || lbl, 63), r.child, r.parent, cond);
        n := n + 1;
    END LOOP;
END
$views$;

-- ================================================================ stored procedures
CREATE FUNCTION checkdbconnection() RETURNS SETOF integer LANGUAGE sql STABLE AS $$ SELECT 1 $$;
CREATE FUNCTION fn_get_new_unique_id() RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    RETURN uuid_generate_v5(uuid_ns_oid(), nextval('uuid_sequence')::text || '-' || uuid_generate_v4()::text);
END $$;
CREATE FUNCTION getnextvdsspmid(v_storage_pool_id uuid) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE v integer;
BEGIN
    SELECT min(x) INTO v FROM generate_series(1, 250) x
    WHERE x NOT IN (SELECT vds_spm_id FROM vds_spm_id_map WHERE storage_pool_id = v_storage_pool_id);
    RETURN coalesce(v, nextval('vds_spm_id_seq')::integer);
END $$;
CREATE FUNCTION fn_db_add_config_value(v_option_name varchar, v_option_value text, v_version varchar) RETURNS void
LANGUAGE sql AS $$
INSERT INTO vdc_options (option_name, option_value, version) VALUES (v_option_name, v_option_value, v_version)
ON CONFLICT (option_name, version) DO NOTHING $$;
CREATE FUNCTION getvdcoptionbyname(v_option_name varchar, v_version varchar) RETURNS SETOF vdc_options
LANGUAGE sql STABLE AS $$ SELECT * FROM vdc_options WHERE option_name = v_option_name AND version = v_version $$;
CREATE FUNCTION deleteauditlogolderthendate(v_date timestamptz) RETURNS void LANGUAGE sql AS $$
DELETE FROM audit_log WHERE log_time < v_date AND audit_log_id NOT IN (SELECT audit_log_id FROM event_notification_hist) $$;
CREATE FUNCTION getvmsbyvdsid(v_vds_id uuid) RETURNS SETOF vms LANGUAGE sql STABLE AS $$
SELECT * FROM vms WHERE run_on_vds = v_vds_id $$;
CREATE FUNCTION insertvmguestagentinterface(v_vm_id uuid, v_interface_name text, v_mac_address varchar,
    v_ipv4_addresses text[], v_ipv6_addresses text[]) RETURNS void LANGUAGE sql AS $$
INSERT INTO vm_guest_agent_interfaces VALUES (v_vm_id, v_interface_name, v_mac_address, v_ipv4_addresses, v_ipv6_addresses) $$;
CREATE FUNCTION getvmguestagentinterfacesbyvmid(v_vm_id uuid) RETURNS SETOF vm_guest_agent_interfaces
LANGUAGE sql STABLE AS $$ SELECT * FROM vm_guest_agent_interfaces WHERE vm_id = v_vm_id $$;
CREATE FUNCTION updatedwhhistorytimekeeping(v_var_name varchar, v_var_value varchar, v_var_datetime timestamptz)
RETURNS void LANGUAGE sql AS $$
UPDATE dwh_history_timekeeping SET var_value = v_var_value, var_datetime = v_var_datetime WHERE var_name = v_var_name $$;
CREATE FUNCTION upsertexternalvariable(v_var_name varchar, v_var_value varchar) RETURNS void LANGUAGE sql AS $$
INSERT INTO external_variable (var_name, var_value, _update_date) VALUES (v_var_name, v_var_value, now())
ON CONFLICT (var_name) DO UPDATE SET var_value = excluded.var_value, _update_date = excluded._update_date $$;
CREATE FUNCTION insert_event_notification_hist(v_event_name varchar, v_audit_log_id bigint, v_method_type char,
    v_reason char, v_sent_at timestamptz, v_status boolean, v_subscriber_id uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_notification_hist (event_name, audit_log_id, method_type, reason, sent_at, status, subscriber_id)
    VALUES (v_event_name, v_audit_log_id, v_method_type, v_reason, v_sent_at, v_status, v_subscriber_id);
    UPDATE audit_log SET processed = true WHERE audit_log_id = v_audit_log_id;
END $$;
-- Triggers: the _update_date of hosts and VMs.
CREATE FUNCTION fn_update_date() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW._update_date := now(); RETURN NEW; END $$;
CREATE TRIGGER vds_static_update_date BEFORE UPDATE ON vds_static FOR EACH ROW EXECUTE FUNCTION fn_update_date();
CREATE TRIGGER vm_static_update_date BEFORE UPDATE ON vm_static FOR EACH ROW EXECUTE FUNCTION fn_update_date();

-- Then, up to 400 functions, oVirt's five per table with a one-column primary key:
-- InsertX, UpdateX, DeleteX, GetXByPk (SETOF the table), GetAllFromX.
DO $procs$
DECLARE
    target constant integer := 400;
    n integer;
    r record;
    kind text;
    camel text;
    fname text;
    pk text;
    pktype text;
    params text;
    cols text;
    vals text;
    sets text;
BEGIN
    SELECT count(*) INTO n FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');
    FOR r IN SELECT c.oid, c.relname, con.conkey[1] AS pkatt
             FROM pg_class c JOIN pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'
             WHERE c.relnamespace = 'public'::regnamespace AND cardinality(con.conkey) = 1 ORDER BY c.oid LOOP
        EXIT WHEN n >= target;
        camel := replace(initcap(replace(r.relname, '_', ' ')), ' ', '');
        SELECT attname, format_type(atttypid, NULL) INTO pk, pktype FROM pg_attribute WHERE attrelid = r.oid AND attnum = r.pkatt;
        SELECT string_agg(format('v_%s %s', attname, format_type(atttypid, NULL)), ', ' ORDER BY attnum),
               string_agg(quote_ident(attname), ', ' ORDER BY attnum),
               string_agg('v_' || attname, ', ' ORDER BY attnum),
               string_agg(format('%I = v_%s', attname, attname), ', ' ORDER BY attnum) FILTER (WHERE attnum <> r.pkatt)
          INTO params, cols, vals, sets
          FROM pg_attribute WHERE attrelid = r.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        FOREACH kind IN ARRAY ARRAY['insert', 'update', 'delete', 'get', 'getall'] LOOP
            EXIT WHEN n >= target;
            CONTINUE WHEN kind = 'update' AND sets IS NULL;
            fname := lower(CASE kind WHEN 'insert' THEN 'Insert' || camel WHEN 'update' THEN 'Update' || camel
                WHEN 'delete' THEN 'Delete' || camel WHEN 'getall' THEN 'GetAllFrom' || camel
                ELSE 'Get' || camel || 'By' || replace(initcap(replace(pk, '_', ' ')), ' ', '') END);
            CONTINUE WHEN EXISTS (SELECT FROM pg_proc WHERE proname = fname AND pronamespace = 'public'::regnamespace);
            EXECUTE CASE kind
                WHEN 'insert' THEN format('CREATE FUNCTION %I(%s) RETURNS void LANGUAGE plpgsql AS $b$ BEGIN INSERT INTO %I (%s) VALUES (%s); END $b$',
                    fname, params, r.relname, cols, vals)
                WHEN 'update' THEN format('CREATE FUNCTION %I(%s) RETURNS void LANGUAGE plpgsql AS $b$ BEGIN UPDATE %I SET %s WHERE %I = v_%s; END $b$',
                    fname, params, r.relname, sets, pk, pk)
                WHEN 'delete' THEN format('CREATE FUNCTION %I(v_%s %s) RETURNS void LANGUAGE plpgsql AS $b$ BEGIN DELETE FROM %I WHERE %I = v_%2$s; END $b$',
                    fname, pk, pktype, r.relname, pk)
                WHEN 'get' THEN format('CREATE FUNCTION %I(v_%s %s) RETURNS SETOF %I STABLE LANGUAGE plpgsql AS $b$ BEGIN RETURN QUERY SELECT * FROM %4$I WHERE %I = v_%2$s; END $b$',
                    fname, pk, pktype, r.relname, pk)
                ELSE format('CREATE FUNCTION %I() RETURNS SETOF %I STABLE LANGUAGE plpgsql AS $b$ BEGIN RETURN QUERY SELECT * FROM %2$I; END $b$',
                    fname, r.relname)
            END;
            n := n + 1;
        END LOOP;
    END LOOP;
END
$procs$;

COMMIT;
RESET ROLE;
ANALYZE;
