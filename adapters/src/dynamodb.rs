//! The `Table` port on DynamoDB: one table, key `pk` (S) + `sk` (S), on-demand, TTL on `ttl`.
//! Reads are strongly consistent (there are no GSIs: every list reads index items that the same
//! transaction wrote, so a list always agrees with a get). Multi-item writes are one
//! `TransactWriteItems`; single writes are one conditional `PutItem`/`DeleteItem`/`UpdateItem`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, ReturnValue, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use flowline_core::store::{
    Expect, Item, Key, Query, SortRange, StoreError, Table, Write, check_transaction,
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
            Err(err) => return Err(classify(err)),
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
            Err(err) => return Err(classify(err)),
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
            Err(err) => Err(classify(err)),
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
                .map_err(classify)?;
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
            Expect::Absent | Expect::Anything => 1,
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

    async fn write_one(&self, write: Write) -> Result<(), StoreError> {
        match write {
            Write::Put {
                key,
                doc,
                expect,
                expires_at,
            } => {
                let condition = Condition::of(expect);
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(Self::item_attributes(&key, &doc, expect, expires_at)?))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_values(condition.values)
                    .send()
                    .await
                    .map(drop)
                    .map_err(classify)
            }
            Write::Delete { key, expect } => {
                let condition = Condition::of(expect);
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key_attributes(&key)))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_values(condition.values)
                    .send()
                    .await
                    .map(drop)
                    .map_err(classify)
            }
            Write::Add { key, delta } => self.increment(&key, delta).await.map(drop),
            check @ Write::Check { .. } => self.transact(vec![check]).await,
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let items = writes
            .into_iter()
            .map(|write| self.transact_item(write))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(drop)
            .map_err(classify_transaction)
    }
}

/// The condition expression for an [`Expect`].
struct Condition {
    expression: Option<String>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    fn of(expect: Expect) -> Self {
        match expect {
            Expect::Anything => Self {
                expression: None,
                values: None,
            },
            Expect::Absent => Self {
                expression: Some("attribute_not_exists(pk)".to_owned()),
                values: None,
            },
            // An item only `Add` wrote has no `rev`: it reads as revision 0, so that is what a
            // read-modify-write of it expects.
            Expect::Revision(0) => Self {
                expression: Some("attribute_exists(pk) AND attribute_not_exists(rev)".to_owned()),
                values: None,
            },
            Expect::Revision(rev) => Self {
                expression: Some("rev = :rev".to_owned()),
                values: Some(HashMap::from([(
                    ":rev".to_owned(),
                    AttributeValue::N(rev.to_string()),
                )])),
            },
        }
    }
}

fn read_item(mut attributes: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
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

/// Maps an SDK error to what the use cases act on.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> StoreError {
    match error_code(&err) {
        Some("ConditionalCheckFailedException" | "TransactionConflictException") => {
            StoreError::ConditionFailed
        }
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ResourceNotFoundException",
        ) => StoreError::Unavailable(format!("{err:?}")),
        Some(code) => StoreError::Corrupt(format!("{code}: {}", err.message().unwrap_or_default())),
        // Timeouts, connection failures, unreadable answers: the call may be retried.
        None => StoreError::Unavailable(format!("{err}")),
    }
}

fn classify_transaction(
    err: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> StoreError {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let SdkError::ServiceError(service) = &err
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .collect();
        if codes
            .iter()
            .any(|code| matches!(*code, "ConditionalCheckFailed" | "TransactionConflict"))
        {
            return StoreError::ConditionFailed;
        }
        if codes
            .iter()
            .any(|code| matches!(*code, "ThrottlingError" | "ProvisionedThroughputExceeded"))
        {
            return StoreError::Unavailable(format!("transaction throttled: {codes:?}"));
        }
        return StoreError::Corrupt(format!("transaction cancelled: {codes:?}"));
    }
    classify(err)
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        answer.item.map(read_item).transpose()
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
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
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(classify)?;
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
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .scan_index_forward(!query.descending)
                .limit(
                    i32::try_from(query.limit - items.len())
                        .unwrap_or(i32::MAX)
                        .max(1),
                )
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
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

    async fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attributes(key)))
            .update_expression("ADD n :delta")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify)?;
        match answer.attributes.as_ref().and_then(|a| a.get("n")) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("counter is {n}"))),
            other => Err(StoreError::Corrupt(format!("counter answered {other:?}"))),
        }
    }
}
