"""Which keys paasta_lite implements, and which PaaSTA keys it accepts but ignores.

Existing PaaSTA soa-configs must load: a key PaaSTA knows that paasta_lite does not implement
is a warning, a key nobody knows (most likely a typo) is an error with a did-you-mean hint.
"""

from __future__ import annotations

from paasta_lite.config.validation import load_schema

#: Instance keys paasta_lite implements (the instance schema's properties).
INSTANCE_KEYS: frozenset[str] = frozenset(load_schema("instance")["properties"])

#: Instance keys PaaSTA knows that paasta_lite accepts and ignores.
IGNORED_INSTANCE_KEYS: frozenset[str] = frozenset(
    """
    registrations pool node_selectors node_selectors_preferred monitoring
    deploy_whitelist deploy_blacklist iam_role iam_role_provider service_account_name fs_group
    fs_group_change_policy lifecycle cap_add privileged persistent_volumes aws_ebs_volumes
    secret_volumes projected_sa_volumes anti_affinity topology_spread_constraints prometheus_shard
    prometheus_path prometheus_port routable_ip uses_bulkdata boto_keys crypto_keys
    datastore_credentials drain_method drain_method_params sidecar_resource_requirements
    dependencies_reference extra_docker_args net role marathon_shard gpus weight
    is_istio_sidecar_injection_enabled bounce_start_deadline backoff_factor backoff_seconds
    max_launch_delay_seconds host_port replication_threshold
    cost_owner ssm_secrets pod_management_policy startup_probe_timeout_seconds
    enable_hacheck_sidecar hacheck_sidecar_volumes storage_class_name constraints extra_constraints
    pool_constraints horizontal_autoscaling boost_start_delay monitoring_blacklist
    healthcheck_max_consecutive_failures_startup allowed_push_groups
    """.split()
)

#: Keys of service.yaml that describe the service rather than give instance defaults.
SERVICE_KEYS: frozenset[str] = frozenset({"description", "external_link", "git_url", "docker_registry"})
IGNORED_SERVICE_KEYS: frozenset[str] = frozenset({"owner", "team", "runbook", "tier", "lightweight"})

#: deploy.yaml: the top-level and pipeline-step keys the deploy schema checks; the other step
#: keys of PaaSTA's deploy_schema.json are accepted with a warning (its top level has no others).
DEPLOY_KEYS: frozenset[str] = frozenset(load_schema("deploy")["properties"])
STEP_KEYS: frozenset[str] = frozenset(load_schema("deploy")["$defs"]["step"]["properties"])
PIPELINE_ENTRY_KEYS: frozenset[str] = frozenset(load_schema("deploy")["$defs"]["entry"]["properties"])
IGNORED_STEP_KEYS: frozenset[str] = frozenset(
    """
    display_step_for_confirmation confirmation_required auto_rollback auto_certify_delay
    auto_abandon_delay auto_rollback_delay warn command slack_notify ignore_failure
    notify_after_mark notify_after_good_deploy notify_after_auto_rollback notify_after_abort
    deployment_steps abandon_above_breakage_pct complete_below_breakage_pct prompt_after_abandon
    confirm_complete enable_automated_deploys
    """.split()
)

#: Files PaaSTA knows that paasta_lite ignores (with one warning each).
IGNORED_FILES: frozenset[str] = frozenset(
    {"monitoring.yaml", "smartstack.yaml", "dependencies.yaml", "data.yaml", "port"}
)
#: Instance-file prefixes of PaaSTA instance types paasta_lite does not run.
IGNORED_INSTANCE_TYPES: tuple[str, ...] = (
    "adhoc-", "eks-", "tron-", "flink-", "flinkeks-", "cassandracluster-", "cassandraclustereks-",
    "kafkacluster-", "monkrelays-", "nrtsearchservice-", "nrtsearchserviceeks-", "paasta_native-",
)
