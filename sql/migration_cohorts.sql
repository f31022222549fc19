-- One row per cohort of Pro accounts: compliance state x Classic margin-level bucket x net-equity bucket x country.
--
-- The migration programme moves non-compliant Pro accounts to Classic. Each cohort counts its Pro
-- accounts, how many are due for migration / to be switched now, their liabilities, the partial
-- repayments the engine asks for before the switch, and bad debt.
-- compliance_state is report account_states' (read from the engine's flags pro_compliant,
--   due_for_migration, migrate_now): compliant | not_yet_required (non-compliant before the compliance
--   date) | pending (due, switch date not reached) | switch_now (migrate_now).
-- classic_margin_level_bucket buckets classic_margin_level, the level an account has once in Classic
-- (the one that drives partial repayment). Bucket edges are presentation only, (lower, upper], and
-- deliberately not policy thresholds: no decision is taken here, every flag and amount comes from
-- account_risk (accounts_needing_repayment = the engine's partial_repayment_usdt > 0, i.e. below the
-- Classic margin-call level of its leverage).
-- level_bucket_order and equity_bucket_order sort the buckets (for charts and tables).
-- reads reports: account_states
-- labels: compliance_state, classic_margin_level_bucket, net_equity_bucket, country

with

pro as (
    select *
    from account_risk
    where margin_mode = 'pro'
),

level_buckets (bucket_order, bucket_label, lower_bound, upper_bound) as (
    values
        (1, '<= 1',         '-inf'::double, 1.0),
        (2, '(1, 2]',       1.0,            2.0),
        (3, '(2, 3]',       2.0,            3.0),
        (4, '(3, 5]',       3.0,            5.0),
        (5, '(5, 10]',      5.0,            10.0),
        (6, '> 10',         10.0,           'inf'::double),
        (7, 'no liability', 'inf'::double,  'inf'::double)
),

equity_buckets (bucket_order, bucket_label, lower_bound, upper_bound) as (
    values
        (1, '< 0',        '-inf'::double, 0.0),
        (2, '0 - 1k',     0.0,            1e3),
        (3, '1k - 10k',   1e3,            1e4),
        (4, '10k - 100k', 1e4,            1e5),
        (5, '100k - 1M',  1e5,            1e6),
        (6, '>= 1M',      1e6,            'inf'::double)
),

classified as (
    select
        pro.*,
        st.compliance_state,
        lb.bucket_order as level_bucket_order,
        lb.bucket_label as classic_margin_level_bucket,
        eb.bucket_order as equity_bucket_order,
        eb.bucket_label as net_equity_bucket
    from pro
    join account_states as st using (account_id)
    left join level_buckets as lb
        on case
            when isinf(pro.classic_margin_level) then lb.bucket_order = 7
            else pro.classic_margin_level > lb.lower_bound
                and pro.classic_margin_level <= lb.upper_bound
                and lb.bucket_order < 7
        end
    left join equity_buckets as eb
        on pro.net_equity_usdt >= eb.lower_bound and pro.net_equity_usdt < eb.upper_bound
),

cohorts as (
    select
        compliance_state,
        case compliance_state
            when 'switch_now' then 1 when 'pending' then 2 when 'not_yet_required' then 3 else 4
        end as state_order,
        level_bucket_order,
        classic_margin_level_bucket,
        equity_bucket_order,
        net_equity_bucket,
        country,
        count(*) as accounts,
        count(*) filter (where due_for_migration) as due_for_migration_accounts,
        count(*) filter (where migrate_now) as migrate_now_accounts,
        count(*) filter (where partial_repayment_usdt > 0) as accounts_needing_repayment,
        sum(total_asset_usdt) as total_asset_usdt,
        sum(total_liability_usdt) as total_liability_usdt,
        sum(net_equity_usdt) as net_equity_usdt,
        sum(partial_repayment_usdt) as partial_repayment_usdt,
        sum(bad_debt_usdt) as bad_debt_usdt,
        count(*) filter (where bad_debt_usdt > 0) as accounts_with_bad_debt
    from classified
    group by all
),

final as (
    select
        compliance_state,
        classic_margin_level_bucket,
        net_equity_bucket,
        country,
        accounts,
        due_for_migration_accounts,
        migrate_now_accounts,
        accounts_needing_repayment,
        total_asset_usdt,
        total_liability_usdt,
        net_equity_usdt,
        partial_repayment_usdt,
        bad_debt_usdt,
        accounts_with_bad_debt,
        level_bucket_order,
        equity_bucket_order
    from cohorts
    order by state_order, level_bucket_order, equity_bucket_order, country
)

select * from final
