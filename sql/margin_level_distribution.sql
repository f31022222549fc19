-- One row per margin mode, level and log-scale level bucket, counting the accounts whose level falls in the bucket.
--
-- Levels: classic_margin_level for Classic accounts; pro_margin_level_old and pro_margin_level_new
-- for Pro accounts (the level in force is one of them). Buckets are presentation only: ten per decade
-- of log10(level), from 0.1 to 100, with open-ended end buckets ('<= 0' for a zero or negative level,
-- '< 0.1', '>= 100') and '+inf' for accounts with no liability (a level whose denominator is 0).
-- Every bucket is listed, empty ones with accounts = 0, so a chart has a fixed axis.
-- labels: margin_mode, level_name, bucket_label

with

levels as (
    select margin_mode, 'classic_margin_level' as level_name, classic_margin_level as level
    from account_risk where margin_mode = 'classic'
    union all
    select margin_mode, 'pro_margin_level_old', pro_margin_level_old
    from account_risk where margin_mode = 'pro'
    union all
    select margin_mode, 'pro_margin_level_new', pro_margin_level_new
    from account_risk where margin_mode = 'pro'
),

series as (
    select * from (values
        ('classic', 'classic_margin_level'),
        ('pro', 'pro_margin_level_old'),
        ('pro', 'pro_margin_level_new')
    ) as s (margin_mode, level_name)
),

-- bucket k in [-10, 19] covers [10^(k/10), 10^((k+1)/10)); -12 = '<= 0', -11 = '< 0.1' (0, 0.1), 20 = '>= 100', 21 = '+inf'
buckets as (
    select
        k as bucket,
        case
            when k = -12 then '<= 0'
            when k = -11 then '< 0.1'
            when k = 20 then '>= 100'
            when k = 21 then '+inf'
            else printf('%.3g', pow(10, k / 10.0))
        end as bucket_label,
        case when k = -12 then '-inf'::double when k = -11 then 0.0 when k = 21 then 'inf'::double
             else pow(10, k / 10.0) end as lower_bound,
        case when k = -12 then 0.0 when k = 20 then 'inf'::double when k = 21 then 'inf'::double
             else pow(10, (k + 1) / 10.0) end as upper_bound
    from range(-12, 22) as r (k)
),

bucketed as (
    select
        margin_mode,
        level_name,
        case
            when isinf(level) and level > 0 then 21
            when level <= 0 then -12
            else least(greatest(floor(log10(level) * 10)::integer, -11), 20)
        end as bucket
    from levels
),

counts as (
    select margin_mode, level_name, bucket, count(*) as accounts
    from bucketed
    group by all
),

final as (
    select
        s.margin_mode,
        s.level_name,
        b.bucket,
        b.bucket_label,
        b.lower_bound,
        b.upper_bound,
        coalesce(c.accounts, 0) as accounts
    from series as s
    cross join buckets as b
    left join counts as c using (margin_mode, level_name, bucket)
    order by s.margin_mode, s.level_name, b.bucket
)

select * from final
