//! Drain marks kept in the ledger as well as on the container instance (`kept_marks::Marked`),
//! against the ECS-faithful fake (its 10-attribute limit) and the in-memory table.

use fleetguard::ids::InstanceId;
use fleetguard::kept_marks::{MarkLedger, Marked};
use fleetguard::ports::{ContainerInstances, DrainMark, DrainReason, DrainResult};
use fleetguard::testing::{FakeAws, FakeNotifier};

const ID: &str = "i-0123456789abcdef0";

fn setup() -> (FakeAws, FakeNotifier, Marked<FakeAws, FakeNotifier>, String) {
    let aws = FakeAws::new();
    let arn = aws.container_instance("prod", ID, "web", 2);
    let table = FakeNotifier::with_dedupe();
    let ecs = Marked::new(aws.clone(), table.clone());
    (aws, table, ecs, arn)
}

fn mark(reason: DrainReason, at: i64) -> DrainMark {
    DrainMark { reason, at }
}

async fn look(ecs: &Marked<FakeAws, FakeNotifier>) -> fleetguard::ports::ContainerInstance {
    ecs.find_container_instance("prod", &InstanceId::parse(ID).unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn at_the_attribute_limit_the_mark_is_kept_in_the_ledger_and_the_drain_is_undone() {
    let (aws, table, ecs, arn) = setup();
    aws.world().custom_attributes.insert(arn.clone(), 10);
    let ci = look(&ecs).await;
    let m = mark(DrainReason::Stopped, 1_000);
    // Without the ledger, ECS refuses the mark: the drain stands, unmarked.
    assert_eq!(
        aws.drain(&ci, Some(m)).await.unwrap(),
        DrainResult::DrainedUnmarked
    );
    aws.world().container_instances[0].status = "ACTIVE".into();
    // With it, the drain is marked.
    assert_eq!(ecs.drain(&ci, Some(m)).await.unwrap(), DrainResult::Drained);
    assert_eq!(aws.world().container_instances[0].drain_mark, None);
    assert_eq!(aws.world().container_instances[0].status, "DRAINING");
    let seen = look(&ecs).await;
    assert_eq!(seen.drain_mark, Some(m), "read back from the ledger");
    assert_eq!(ecs.marked("prod").await.unwrap(), vec![arn.clone()]);
    // The undo removes the kept mark too.
    ecs.activate(&seen).await.unwrap();
    assert_eq!(aws.world().container_instances[0].status, "ACTIVE");
    assert!(table.kept_mark(ID).await.is_none());
    assert!(ecs.marked("prod").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_mark_lost_to_an_outage_is_kept_and_a_stronger_kept_mark_wins_over_the_attribute() {
    let (aws, _table, ecs, _arn) = setup();
    let ci = look(&ecs).await;
    let rebalance = mark(DrainReason::Rebalance, 1_000);
    assert_eq!(
        ecs.drain(&ci, Some(rebalance)).await.unwrap(),
        DrainResult::Drained
    );
    // The interruption's mark cannot replace the attribute (down past both tries): the
    // ledger keeps it, so no undo reads the weaker rebalance mark.
    aws.throttle("PutAttributes", 2);
    let interruption = mark(DrainReason::Interruption, 1_100);
    let ci = look(&ecs).await;
    assert_eq!(
        ecs.drain(&ci, Some(interruption)).await.unwrap(),
        DrainResult::AlreadyDraining
    );
    assert_eq!(
        aws.world().container_instances[0].drain_mark,
        Some(rebalance)
    );
    assert_eq!(look(&ecs).await.drain_mark, Some(interruption));
    // A weaker mark never replaces it.
    let ci = look(&ecs).await;
    ecs.drain(&ci, Some(mark(DrainReason::Stopped, 1_200)))
        .await
        .unwrap();
    assert_eq!(look(&ecs).await.drain_mark, Some(interruption));
}

#[tokio::test]
async fn someone_elses_drain_is_not_claimed() {
    let (aws, table, ecs, _arn) = setup();
    aws.world().container_instances[0].status = "DRAINING".into();
    let ci = look(&ecs).await;
    assert_eq!(
        ecs.drain(&ci, Some(mark(DrainReason::Maintenance, 5_000)))
            .await
            .unwrap(),
        DrainResult::AlreadyDraining
    );
    assert!(table.kept_mark(ID).await.is_none());
    assert_eq!(look(&ecs).await.drain_mark, None);
}

#[tokio::test]
async fn a_kept_mark_of_an_instance_gone_is_forgotten_by_the_sweeps_look() {
    let (aws, table, ecs, arn) = setup();
    aws.world().custom_attributes.insert(arn.clone(), 10);
    let ci = look(&ecs).await;
    ecs.drain(&ci, Some(mark(DrainReason::Stopped, 1_000)))
        .await
        .unwrap();
    aws.world().container_instances.clear();
    let marked = ecs.marked("prod").await.unwrap();
    assert_eq!(marked, vec![arn]);
    assert!(ecs.describe("prod", marked).await.unwrap().is_empty());
    assert!(table.kept_mark(ID).await.is_none());
    assert!(table.kept_marks().await.is_empty());
}

#[tokio::test]
async fn a_stale_kept_mark_on_an_active_instance_reaches_the_sweep() {
    let (aws, _table, ecs, arn) = setup();
    aws.world().custom_attributes.insert(arn.clone(), 10);
    let ci = look(&ecs).await;
    let m = mark(DrainReason::Stopped, 1_000);
    ecs.drain(&ci, Some(m)).await.unwrap();
    // Someone set it ACTIVE: the sweep's look sees the kept mark, to remove it as stale.
    aws.world().container_instances[0].status = "ACTIVE".into();
    let marked = ecs.marked("prod").await.unwrap();
    let cis = ecs.describe("prod", marked).await.unwrap();
    assert_eq!(cis[0].drain_mark, Some(m));
}

/// The marks as DynamoDB keeps them (moto): a stronger mark replaces a weaker one, never the
/// reverse; a plain instance's registrations come back with their ports; the index lists each
/// place once and forgets it with the mark.
#[tokio::test]
async fn marks_in_the_dynamodb_table() {
    use fleetguard::kept_marks::{KeptMark, MarkPlace};
    use fleetguard::notify::book::Book;
    use fleetguard::notify::ledger_dynamodb::DynamoLedger;
    use fleetguard::ports::Registration;
    let aws = fleetguard_integration::LocalAws::start();
    let sdk = aws.sdk_config().await;
    let table = fleetguard_integration::dedupe_table(&sdk, "fleetguard-marks").await;
    let book = Book::new(DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let place = MarkPlace {
        instance: ID.into(),
        cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
        container_instance_arn: format!(
            "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{ID}"
        ),
    };
    let kept = |reason, at| KeptMark {
        place: place.clone(),
        mark: mark(reason, at),
        registrations: Vec::new(),
    };
    let now = chrono::Utc::now().timestamp();
    book.keep_mark(&kept(DrainReason::Rebalance, now))
        .await
        .unwrap();
    book.keep_mark(&kept(DrainReason::Interruption, now))
        .await
        .unwrap();
    book.keep_mark(&kept(DrainReason::Stopped, now + 10))
        .await
        .unwrap();
    assert_eq!(
        book.kept_mark(ID).await.unwrap(),
        Some(kept(DrainReason::Interruption, now))
    );
    assert_eq!(book.kept_marks().await.unwrap(), vec![place.clone()]);
    book.drop_mark(&place).await.unwrap();
    assert_eq!(book.kept_mark(ID).await.unwrap(), None);
    assert!(book.kept_marks().await.unwrap().is_empty());

    let plain = KeptMark {
        place: MarkPlace::plain("i-0fedcba9876543210"),
        mark: mark(DrainReason::SpotStop, now),
        registrations: vec![
            Registration {
                target_group_arn:
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
                        .into(),
                port: Some(8080),
                state: "unused".into(),
            },
            Registration {
                target_group_arn:
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda/0123456789abcdef"
                        .into(),
                port: None,
                state: "unused".into(),
            },
        ],
    };
    book.keep_mark(&plain).await.unwrap();
    assert_eq!(
        book.kept_mark("i-0fedcba9876543210").await.unwrap(),
        Some(plain)
    );
}

/// A sweep over a large scale-in: the index is read once, and only the marked container
/// instances' items (none for drains that carry no mark).
#[tokio::test]
async fn reading_many_draining_container_instances_reads_only_the_marked_ones() {
    use fleetguard::notify::ledger::MemoryLedger;
    let aws = FakeAws::new();
    for i in 0..20 {
        aws.container_instance("prod", &format!("i-0{i:016x}"), "web", 1);
    }
    aws.container_instance("prod", ID, "web", 2);
    let ledger = MemoryLedger::table(|| 1_000);
    let table = FakeNotifier::over(ledger.clone());
    let ecs = Marked::new(aws.clone(), table);
    let ci = look(&ecs).await;
    ecs.drain(&ci, Some(mark(DrainReason::WarmPool, 1_000)))
        .await
        .unwrap();
    for c in aws.world().container_instances.iter_mut() {
        c.status = "DRAINING".into();
    }
    let before = ledger.calls().0;
    let cis = ecs.container_instances("prod", None).await.unwrap();
    assert_eq!(ledger.calls().0 - before, 2, "the index and one item");
    let marked: Vec<_> = cis.iter().filter(|c| c.drain_mark.is_some()).collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].ec2_instance_id, ID);
}
