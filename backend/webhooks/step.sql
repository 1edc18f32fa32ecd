-- name: endpoint
select e.url, e.disabled_at, s.secret
  from public.webhook_endpoints e
  join voicegate.webhook_secrets s on s.endpoint_id = e.id
 where e.id = %(id)s;

-- name: disable_endpoint
update public.webhook_endpoints set disabled_at = now() where id = %(id)s and disabled_at is null;

-- name: declare_project_endpoint
update voicegate.project_webhook set configured = %(configured)s where configured <> %(configured)s;
