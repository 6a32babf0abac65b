# ruff: noqa: E501  (one reason per line, as written)
"""asyncpg tests excluded from the run: they read asyncpg internals, not its API.

Keys are 'test_file.py::Class::test' (or 'test_file.py::Class' for a whole class); values
are a one-line reason.  Only tests that depend on asyncpg's private attributes or its Cython
protocol are listed; tests that fail because pgoxide behaves differently are the inventory.

Not excluded on purpose: tests that only unwrap a pool proxy with ``PoolConnectionProxy._con``
(pgoxide keeps that attribute under the same name, so they measure real behaviour).
The list was drawn up by scanning each test (and the helpers it calls) for private attribute
access, then reviewed by hand.
"""

EXCLUDED: dict[str, str] = {
    "test_cache_invalidation.py::TestCacheInvalidation::test_prepare_cache_invalidation_in_pool": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_prepare_cache_invalidation_in_transaction": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_prepare_cache_invalidation_silent": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_prepared_type_cache_invalidation": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_type_cache_invalidation_in_cancelled_transaction": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_type_cache_invalidation_in_pool": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_type_cache_invalidation_in_transaction": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_type_cache_invalidation_on_change_attr": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_cache_invalidation.py::TestCacheInvalidation::test_type_cache_invalidation_on_drop_type_attr": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_codecs.py::TestCodecs::test_all_builtin_types_handled": (
        "imports asyncpg.protocol.protocol.BUILTIN_TYPE_OID_MAP (asyncpg's Cython codec table)"
    ),
    "test_copy.py::TestCopyTo::test_copy_records_to_table_stmt_cache": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_copy.py::TestCopyTo::test_copy_records_to_table_where": (
        "reads private Connection._server_caps"
    ),
    "test_cursor.py::TestIterableCursor::test_cursor_iterable_03": (
        "reads PreparedStatement._state (asyncpg's PreparedStatementState)"
    ),
    "test_cursor.py::TestIterableCursor::test_cursor_iterable_04": (
        "reads PreparedStatement._state (asyncpg's PreparedStatementState)"
    ),
    "test_execute.py::TestExecuteMany::test_executemany_client_server_failure_conflict": (
        "uses asyncpg's private Connection._transport"
    ),
    "test_execute.py::TestExecuteScript::test_execute_script_1": (
        "reads asyncpg's private Connection._protocol (queries_count / _is_cancelling / ...)"
    ),
    "test_pool.py::TestPool::test_pool_04": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_config_persistence": ("reads private Connection._config"),
    "test_pool.py::TestPool::test_pool_expire_connections": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_floor_reconnect_honors_expired_generation": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_gc_does_not_restore_min_size": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_handles_query_cancel_in_release": (
        "inspects asyncpg's private Pool._queue"
    ),
    "test_pool.py::TestPool::test_pool_handles_task_cancel_in_acquire_with_timeout": (
        "inspects asyncpg's private Pool._queue"
    ),
    "test_pool.py::TestPool::test_pool_handles_task_cancel_in_release": (
        "inspects asyncpg's private Pool._queue"
    ),
    "test_pool.py::TestPool::test_pool_max_inactive_time_01": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_max_inactive_time_02": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_max_inactive_time_03": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_max_inactive_time_05": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_backs_off_on_target_attribute_mismatch": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_keeps_connections_alive": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_reconnect_after_expiry": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_restored_after_idle_connection_loss": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_restored_after_multiple_losses": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_restored_after_recycling": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_retries_closed_connection": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_retries_failed_reconnect": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_reuses_retained_connections": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_min_size_zero_allows_full_expiry": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_release_after_background_cancel_timeout": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_pool.py::TestPool::test_pool_release_after_protocol_abort": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_pool.py::TestPool::test_pool_release_in_xact": (
        "asserts on private Connection._top_xact"
    ),
    "test_pool.py::TestPool::test_pool_release_timeout_during_cancellation": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_pool.py::TestPool::test_pool_shutdown_cancels_floor_reconnect": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_pool.py::TestPool::test_pool_shutdown_cleans_idle_connections": (
        "inspects asyncpg's private pool holders (Pool._holders / holder._con / _in_use / _inactive_callback)"
    ),
    "test_prepare.py::TestPrepare::test_prepare_01": (
        "reads asyncpg's private Connection._protocol (queries_count / _is_cancelling / ...)"
    ),
    "test_prepare.py::TestPrepare::test_prepare_10_stmt_lru": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_11_stmt_gc": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_12_stmt_gc": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_15_stmt_gc_cache_disabled": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_17_stmt_closed_lru": (
        "reads PreparedStatement._state (asyncpg's PreparedStatementState)"
    ),
    "test_prepare.py::TestPrepare::test_prepare_23_no_stmt_cache_seq": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_24_max_lifetime": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_25_max_lifetime_reset": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_26_max_lifetime_max_size": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_27_max_cacheable_statement_size": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_prepare.py::TestPrepare::test_prepare_does_not_use_cache": (
        "inspects asyncpg's private statement cache (Connection._stmt_cache / _stmts_to_close / _prepare(use_cache=))"
    ),
    "test_record.py::TestRecord::test_record_cmp": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_contains": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_empty": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_freelist_ok": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_gc": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_get": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_get_invalid_args": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_hash": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_immutable": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_items": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_iter": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_keys": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_len_getindex": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_not_pickleable": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_repr": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_slice": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_record.py::TestRecord::test_record_values": (
        "builds Records with asyncpg.protocol.protocol._create_record (private factory; pgoxide has no Record constructor)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_cancel_attempt_expires_during_close": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_cancel_attempt_has_one_deadline": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_cancel_close_aborts_transport": (
        "uses asyncpg's private Connection._transport"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_close_has_one_timeout_budget": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_close_timeout_resolves_running_query": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_close_times_out_pending_cancel": (
        "reads asyncpg's private Connection._protocol (queries_count / _is_cancelling / ...)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_close_uses_command_timeout": (
        "uses asyncpg's private Connection._transport"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_connection_lost_during_close": (
        "reads asyncpg's private Connection._protocol (queries_count / _is_cancelling / ...)"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_failed_cancel_during_close_without_timeout": (
        "patches asyncpg.connect_utils internals (_cancel / protocol.Protocol)"
    ),
    "test_transaction.py::TestTransaction::test_transaction_interface_errors": (
        "asserts on private Connection._top_xact"
    ),
    "test_transaction.py::TestTransaction::test_transaction_nested": (
        "asserts on private Connection._top_xact"
    ),
    "test_transaction.py::TestTransaction::test_transaction_regular": (
        "asserts on private Connection._top_xact"
    ),
    "test_transaction.py::TestTransaction::test_transaction_within_manual_transaction": (
        "asserts on private Connection._top_xact"
    ),
    "test_timeout.py::TestCloseTimeoutPendingCancel::test_next_command_timeout_includes_pending_cancel": (
        "patches asyncpg.connect_utils._cancel and reads Connection._cancellations / _protocol"
    ),
    "test_timeout.py::TestTimeoutCoversPrepare::test_timeout_covers_prepare_01": (
        "overrides asyncpg's private Connection._get_statement to slow down the prepare step"
    ),
}
