//! The `Table` port on DynamoDB: one table, key `pk` (S) + `sk` (S), on-demand, TTL on `ttl`.
//! Reads are strongly consistent (there are no GSIs: every list reads index items that the same
//! transaction wrote, so a list always agrees with a get). Multi-item writes are one
//! `TransactWriteItems`; single writes are one conditional `PutItem`/`DeleteItem`/`UpdateItem`.
//!
//! What DynamoDB does under load is handled here, so the use cases see only "done", "a
//! condition did not hold" or "unavailable":
//! - Throttling, 5xx, timeouts and transaction conflicts are retried with capped exponential
//!   backoff and full jitter (the SDK's own three attempts first, then ours) until the deadline
//!   of the request in hand (`flowline_core::deadline`); then the call is `Unavailable` (503).
//! - A retry must not turn a write that was applied (its answer lost) into a failure: a
//!   transaction carries one `ClientRequestToken` over all its attempts, so DynamoDB answers a
//!   repeat of an applied one with success; a single conditional write asks for the item on a
//!   failed condition and, finding exactly what it wrote, knows the write was its own.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use flowline_core::concurrency::Backoff;
use flowline_core::store::{
    Expect, Item, Key, Query, SortRange, StoreError, Table, Write, check_key, check_transaction,
};
use serde_dynamo::aws_sdk_dynamodb_1::{from_attribute_value, to_attribute_value};

/// BatchGetItem reads at most 100 keys a call.
const BATCH_GET_LIMIT: usize = 100;
/// Unprocessed keys (throttling) are retried this often before giving up as unavailable.
const BATCH_GET_ATTEMPTS: u32 = 5;

pub struct DynamoTable {
    client: Client,
    table: String,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (and its TTL) when missing; used by the local server and the tests.
    /// In the cloud the SAM template owns the tables.
    pub async fn ensure_exists(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return self.wait_until_active().await,
            Err(err) if error_code(&err) == Some("ResourceNotFoundException") => {}
            Err(err) => return Err(fail(err)),
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition is complete")
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("key schema is complete")
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk"))
            .attribute_definitions(attribute("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it first.
            Err(err) if error_code(&err) == Some("ResourceInUseException") => {}
            Err(err) => return Err(fail(err)),
        }
        self.wait_until_active().await?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("ttl")
            .build()
            .expect("ttl specification is complete");
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already enabled by a concurrent creator.
            Err(err) if error_code(&err) == Some("ValidationException") => Ok(()),
            Err(err) => Err(fail(err)),
        }
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        for _ in 0..60 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(fail)?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(format!(
            "table {} did not become active",
            self.table
        )))
    }

    fn key_attributes(key: &Key) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
        ])
    }

    fn item_attributes(
        key: &Key,
        doc: &serde_json::Value,
        expect: Expect,
        expires_at: Option<i64>,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut attributes = Self::key_attributes(key);
        let rev = match expect {
            Expect::Revision(rev) => rev + 1,
            Expect::Absent | Expect::Anything | Expect::AbsentOrExpired(_) => 1,
        };
        attributes.insert("rev".to_owned(), AttributeValue::N(rev.to_string()));
        let doc = to_attribute_value(doc).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        attributes.insert("doc".to_owned(), doc);
        if let Some(ttl) = expires_at {
            attributes.insert("ttl".to_owned(), AttributeValue::N(ttl.to_string()));
        }
        Ok(attributes)
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, StoreError> {
        let built = |err: aws_sdk_dynamodb::error::BuildError| StoreError::Corrupt(err.to_string());
        let item = match write {
            Write::Put {
                key,
                doc,
                expect,
                expires_at,
            } => {
                let condition = Condition::of(expect);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::item_attributes(&key, &doc, expect, expires_at)?))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(built)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete { key, expect } => {
                let condition = Condition::of(expect);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key_attributes(&key)))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(built)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Check { key, expect } => {
                let condition = Condition::of(expect);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key_attributes(&key)))
                    // A check with no condition always holds; DynamoDB requires some expression.
                    .condition_expression(condition.expression.unwrap_or_else(|| {
                        "attribute_exists(pk) OR attribute_not_exists(pk)".to_owned()
                    }))
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(built)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
            Write::Add { key, delta } => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key_attributes(&key)))
                    .update_expression("ADD n :delta")
                    .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                    .build()
                    .map_err(built)?;
                TransactWriteItem::builder().update(update).build()
            }
        };
        Ok(item)
    }

    /// Runs `call` until it is done or fails for good, retrying what is [`Failed::Transient`]
    /// until the deadline of the work in hand.
    async fn retrying<T, F, Fut>(&self, operation: &str, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failed>>,
    {
        let mut backoff = Backoff::for_store();
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(Failed::Final(err)) => return Err(err),
                Err(Failed::Transient(reason)) => {
                    // Half a second is kept for what the caller does after this call.
                    if !backoff.pause(Duration::from_millis(500)).await {
                        tracing::warn!(
                            operation,
                            attempts = backoff.attempts(),
                            %reason,
                            "DynamoDB kept failing until the deadline"
                        );
                        return Err(StoreError::Unavailable(format!("{operation}: {reason}")));
                    }
                    tracing::debug!(operation, %reason, "retrying a DynamoDB call");
                }
            }
        }
    }

    async fn write_one(&self, write: Write) -> Result<(), StoreError> {
        match write {
            Write::Put {
                key,
                doc,
                expect,
                expires_at,
            } => {
                let item = Self::item_attributes(&key, &doc, expect, expires_at)?;
                let condition = Condition::of(expect);
                self.retrying("PutItem", || async {
                    let answer = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()))
                        .set_condition_expression(condition.expression.clone())
                        .set_expression_attribute_names(condition.names.clone())
                        .set_expression_attribute_values(condition.values.clone())
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .send()
                        .await;
                    match answer {
                        Ok(_) => Ok(()),
                        Err(err) => match failed_condition(&err) {
                            // The item is already exactly what this call writes: an earlier
                            // attempt of it was applied and its answer lost.
                            Some(Some(current)) if is_written(&current, &item) => Ok(()),
                            Some(_) => Err(Failed::Final(StoreError::ConditionFailed)),
                            None => Err(classify(err)),
                        },
                    }
                })
                .await
            }
            Write::Delete { key, expect } => {
                let condition = Condition::of(expect);
                let attributes = Self::key_attributes(&key);
                // A retried delete that finds its item gone answers ConditionFailed, as any
                // delete of a missing item does: its callers read again and see it gone.
                self.retrying("DeleteItem", || async {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(attributes.clone()))
                        .set_condition_expression(condition.expression.clone())
                        .set_expression_attribute_names(condition.names.clone())
                        .set_expression_attribute_values(condition.values.clone())
                        .send()
                        .await
                        .map(drop)
                        .map_err(classify)
                })
                .await
            }
            Write::Add { key, delta } => self.increment(&key, delta, None).await.map(drop),
            check @ Write::Check { .. } => self.transact(vec![check]).await,
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let items = writes
            .into_iter()
            .map(|write| self.transact_item(write))
            .collect::<Result<Vec<_>, _>>()?;
        // One token for every attempt: DynamoDB answers the repeat of an applied transaction
        // (within 10 minutes) with success instead of applying it again or failing its
        // conditions.
        let token = flowline_core::ids::random_token(32);
        self.retrying("TransactWriteItems", || async {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await
                .map(drop)
                .map_err(classify_transaction)
        })
        .await
    }
}

/// How a call failed: worth another attempt, or not.
enum Failed {
    /// Throttled, a transaction conflict, a 5xx, a timeout, a dropped connection.
    Transient(String),
    Final(StoreError),
}

/// For a failed conditional write: `Some(the item as it is, if it exists)`; `None` when the
/// failure was something else.
fn failed_condition<E, R>(err: &SdkError<E, R>) -> Option<Option<HashMap<String, AttributeValue>>>
where
    E: ProvideErrorMetadata + ConditionFailure,
{
    match err {
        SdkError::ServiceError(service) => service.err().failed_condition(),
        _ => None,
    }
}

/// The conditional-check failure inside an operation's error type.
trait ConditionFailure {
    fn failed_condition(&self) -> Option<Option<HashMap<String, AttributeValue>>>;
}

impl ConditionFailure for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn failed_condition(&self) -> Option<Option<HashMap<String, AttributeValue>>> {
        match self {
            Self::ConditionalCheckFailedException(failed) => Some(failed.item().cloned()),
            _ => None,
        }
    }
}

/// Whether `current` is exactly the item `written` (revision and document included).
fn is_written(
    current: &HashMap<String, AttributeValue>,
    written: &HashMap<String, AttributeValue>,
) -> bool {
    current == written
}

/// The condition expression for an [`Expect`].
struct Condition {
    expression: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    fn of(expect: Expect) -> Self {
        match expect {
            Expect::Anything => Self {
                expression: None,
                names: None,
                values: None,
            },
            Expect::Absent => Self {
                expression: Some("attribute_not_exists(pk)".to_owned()),
                names: None,
                values: None,
            },
            // `ttl` is a reserved word.
            Expect::AbsentOrExpired(now) => Self {
                expression: Some("attribute_not_exists(pk) OR #ttl < :now".to_owned()),
                names: Some(HashMap::from([("#ttl".to_owned(), "ttl".to_owned())])),
                values: Some(HashMap::from([(
                    ":now".to_owned(),
                    AttributeValue::N(now.to_string()),
                )])),
            },
            // An item only `Add` wrote has no `rev`: it reads as revision 0, so that is what a
            // read-modify-write of it expects.
            Expect::Revision(0) => Self {
                expression: Some("attribute_exists(pk) AND attribute_not_exists(rev)".to_owned()),
                names: None,
                values: None,
            },
            Expect::Revision(rev) => Self {
                expression: Some("rev = :rev".to_owned()),
                names: None,
                values: Some(HashMap::from([(
                    ":rev".to_owned(),
                    AttributeValue::N(rev.to_string()),
                )])),
            },
        }
    }
}

/// An item from its DynamoDB attributes (what a read answers, or a stream record's image).
pub fn read_item(mut attributes: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let text = |attributes: &mut HashMap<String, AttributeValue>, name: &str| match attributes
        .remove(name)
    {
        Some(AttributeValue::S(value)) => Ok(value),
        other => Err(StoreError::Corrupt(format!(
            "attribute {name} is {other:?}"
        ))),
    };
    let number =
        |attributes: &HashMap<String, AttributeValue>, name: &str| match attributes.get(name) {
            Some(AttributeValue::N(value)) => value
                .parse::<i64>()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("attribute {name} is {value}"))),
            None => Ok(None),
            Some(other) => Err(StoreError::Corrupt(format!(
                "attribute {name} is {other:?}"
            ))),
        };
    let key = Key {
        pk: text(&mut attributes, "pk")?,
        sk: text(&mut attributes, "sk")?,
    };
    let rev = number(&attributes, "rev")?.unwrap_or(0) as u64;
    let count = number(&attributes, "n")?.unwrap_or(0);
    let expires_at = number(&attributes, "ttl")?;
    let doc = match attributes.remove("doc") {
        Some(doc) => {
            from_attribute_value(doc).map_err(|err| StoreError::Corrupt(err.to_string()))?
        }
        None => serde_json::Value::Null,
    };
    Ok(Item {
        key,
        rev,
        doc,
        count,
        expires_at,
    })
}

fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// What a failed call means for the use cases. Messages carry the AWS error code and message
/// (`DisplayErrorContext`), never a bare "service error".
fn classify<E, R>(err: SdkError<E, R>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error_code(&err) {
        Some("ConditionalCheckFailedException") => Failed::Final(StoreError::ConditionFailed),
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException",
        ) => Failed::Transient(DisplayErrorContext(err).to_string()),
        Some("ResourceNotFoundException") => Failed::Final(StoreError::Unavailable(
            DisplayErrorContext(err).to_string(),
        )),
        Some("ValidationException") if is_key_too_long(&err) => {
            Failed::Final(StoreError::InvalidKey(DisplayErrorContext(err).to_string()))
        }
        Some(_) => Failed::Final(StoreError::Corrupt(DisplayErrorContext(err).to_string())),
        // Timeouts, connection failures, 5xx without a code, unreadable answers.
        None => Failed::Transient(DisplayErrorContext(err).to_string()),
    }
}

fn is_key_too_long<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.message()
        .is_some_and(|message| message.contains("key") && message.contains("size"))
}

fn classify_transaction(
    err: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Failed {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let SdkError::ServiceError(service) = &err
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .filter(|code| *code != "None")
            .collect();
        // A condition that does not hold is the use case's business, whatever else happened.
        if codes.contains(&"ConditionalCheckFailed") {
            return Failed::Final(StoreError::ConditionFailed);
        }
        // Another transaction touched one of the items, or the items were throttled: the same
        // transaction (same token) may well go through a moment later.
        if codes.iter().all(|code| {
            matches!(
                *code,
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        }) && !codes.is_empty()
        {
            return Failed::Transient(format!("transaction cancelled: {codes:?}"));
        }
        return Failed::Final(StoreError::Corrupt(format!(
            "transaction cancelled: {codes:?}"
        )));
    }
    if error_code(&err) == Some("IdempotentParameterMismatchException") {
        return Failed::Final(StoreError::Corrupt(DisplayErrorContext(err).to_string()));
    }
    classify(err)
}

/// The final error of a call that is not retried here (table set-up).
fn fail<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match classify(err) {
        Failed::Final(err) => err,
        Failed::Transient(reason) => StoreError::Unavailable(reason),
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let attributes = Self::key_attributes(key);
        let answer = self
            .retrying("GetItem", || async {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(attributes.clone()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(classify)
            })
            .await?;
        answer.item.map(read_item).transpose()
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().try_for_each(check_key)?;
        let mut found: HashMap<Key, Item> = HashMap::new();
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(BATCH_GET_LIMIT) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(|key| Self::key_attributes(key)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > BATCH_GET_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem kept leaving keys unprocessed".to_owned(),
                    ));
                }
                if attempt > 1 {
                    // Unprocessed keys mean throttling: back off before asking again.
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                let answer = self
                    .retrying("BatchGetItem", || async {
                        self.client
                            .batch_get_item()
                            .request_items(&self.table, request.clone())
                            .send()
                            .await
                            .map_err(classify)
                    })
                    .await?;
                for attributes in answer
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let item = read_item(attributes)?;
                    found.insert(item.key.clone(), item);
                }
                pending = answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|keys| keys.keys)
                    .unwrap_or_default();
            }
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        check_key(&Key::new(
            query.pk.clone(),
            query.after.clone().unwrap_or_default(),
        ))?;
        let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(query.pk.clone()))]);
        let condition = match &query.range {
            SortRange::All => "pk = :pk",
            SortRange::Prefix(prefix) => {
                values.insert(":prefix".to_owned(), AttributeValue::S(prefix.clone()));
                "pk = :pk AND begins_with(sk, :prefix)"
            }
            SortRange::Between(low, high) => {
                if low > high {
                    return Ok(Vec::new());
                }
                values.insert(":low".to_owned(), AttributeValue::S(low.clone()));
                values.insert(":high".to_owned(), AttributeValue::S(high.clone()));
                "pk = :pk AND sk BETWEEN :low AND :high"
            }
        };
        let start = query
            .after
            .as_ref()
            .map(|after| Self::key_attributes(&Key::new(query.pk.clone(), after.clone())));
        let mut items = Vec::new();
        let mut start = start;
        // One call answers at most 1 MB; continue until the page is full or the range ends.
        loop {
            let limit = i32::try_from(query.limit - items.len())
                .unwrap_or(i32::MAX)
                .max(1);
            let answer = self
                .retrying("Query", || async {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression(condition)
                        .set_expression_attribute_values(Some(values.clone()))
                        .set_exclusive_start_key(start.clone())
                        .scan_index_forward(!query.descending)
                        .limit(limit)
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(classify)
                })
                .await?;
            for attributes in answer.items.unwrap_or_default() {
                items.push(read_item(attributes)?);
            }
            start = answer.last_evaluated_key;
            if start.is_none() || items.len() >= query.limit {
                break;
            }
        }
        items.truncate(query.limit);
        Ok(items)
    }

    async fn write(&self, mut writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        match writes.len() {
            0 => Ok(()),
            1 => self.write_one(writes.pop().expect("one write")).await,
            _ => self.transact(writes).await,
        }
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        check_key(key)?;
        let attributes = Self::key_attributes(key);
        // ADD is not idempotent: a retry after a lost answer may count twice. Counters are the
        // flow id sequence (a gap is harmless) and approximate rate windows.
        let answer = self
            .retrying("UpdateItem", || async {
                let update = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(attributes.clone()))
                    .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                    .return_values(ReturnValue::UpdatedNew);
                let update = match expires_at {
                    Some(ttl) => update
                        .update_expression("ADD n :delta SET #ttl = :ttl")
                        .expression_attribute_names("#ttl", "ttl")
                        .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string())),
                    None => update.update_expression("ADD n :delta"),
                };
                update.send().await.map_err(classify)
            })
            .await?;
        match answer.attributes.as_ref().and_then(|a| a.get("n")) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("counter is {n}"))),
            other => Err(StoreError::Corrupt(format!("counter answered {other:?}"))),
        }
    }
}
