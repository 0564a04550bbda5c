//! The ledger in the `DEDUPE_TABLE` DynamoDB table: one item per key (`pk`), each condition one
//! expression. The SDK's standard retry mode retries throttling with backoff; what still fails
//! is a [`LedgerError`].

use super::ledger::{
    COUNT, Cond, EXPIRES_AT, Item, LEASE_UNTIL, Ledger, LedgerError, OPEN, Put, SENDING, STATE,
    Update, VERSION, Written,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> LedgerError {
    LedgerError(crate::text::excerpt(
        &DisplayErrorContext(&e).to_string(),
        300,
    ))
}

fn conditional_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// A condition as DynamoDB's expression, with its names and values.
fn expression(cond: Cond, now: i64) -> Option<(&'static str, Vec<(&'static str, AttributeValue)>)> {
    let n = |v: i64| AttributeValue::N(v.to_string());
    let sending = || AttributeValue::S(SENDING.into());
    Some(match cond {
        Cond::Always => return None,
        Cond::Free => (
            "attribute_not_exists(pk) OR #exp < :now",
            vec![(":now", n(now))],
        ),
        Cond::FreeOrSending => (
            "attribute_not_exists(pk) OR #exp < :now OR #state = :sending",
            vec![(":now", n(now)), (":sending", sending())],
        ),
        Cond::Sending => ("#state = :sending", vec![(":sending", sending())]),
        Cond::LeaseLapsed => (
            "attribute_not_exists(pk) OR #lease < :now",
            vec![(":now", n(now))],
        ),
        Cond::Holds(mine) => ("#lease = :mine", vec![(":mine", n(mine))]),
        Cond::NotNewer(v) => (
            "attribute_not_exists(pk) OR #exp < :now OR #version <= :v",
            vec![(":now", n(now)), (":v", n(v))],
        ),
        Cond::NotOpen => (
            "attribute_not_exists(pk) OR #exp < :now OR #state <> :open",
            vec![(":now", n(now)), (":open", AttributeValue::S(OPEN.into()))],
        ),
        Cond::OpenVersion(v) => (
            "#version = :v AND #state = :open",
            vec![(":v", n(v)), (":open", AttributeValue::S(OPEN.into()))],
        ),
        Cond::OpenAt(v, c) => (
            "#version = :v AND #state = :open AND #count = :c",
            vec![
                (":v", n(v)),
                (":open", AttributeValue::S(OPEN.into())),
                (":c", n(c)),
            ],
        ),
    })
}

/// The attribute names an expression may use (DynamoDB refuses unused ones).
fn names(expr: &str) -> Vec<(&'static str, &'static str)> {
    [
        ("#exp", EXPIRES_AT),
        ("#state", STATE),
        ("#lease", LEASE_UNTIL),
        ("#version", VERSION),
        ("#count", COUNT),
    ]
    .into_iter()
    .filter(|(k, _)| expr.contains(k))
    .collect()
}

fn to_item(item: &HashMap<String, AttributeValue>) -> Item {
    let mut out = Item::default();
    for (k, v) in item {
        match v {
            AttributeValue::S(s) => {
                out.s.insert(k.clone(), s.clone());
            }
            AttributeValue::N(n) => {
                if let Ok(n) = n.parse() {
                    out.n.insert(k.clone(), n);
                }
            }
            AttributeValue::Ss(ss) => {
                out.ss.insert(k.clone(), ss.iter().cloned().collect());
            }
            _ => {}
        }
    }
    out
}

impl Ledger for DynamoLedger {
    fn now(&self) -> i64 {
        crate::time::now_epoch()
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn shared(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().map(to_item))
    }

    async fn put_or_get(&self, key: &str, item: Item, cond: Cond) -> Result<Put, LedgerError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in item.s {
            req = req.item(k, AttributeValue::S(v));
        }
        for (k, v) in item.n {
            req = req.item(k, AttributeValue::N(v.to_string()));
        }
        for (k, v) in item.ss.into_iter().filter(|(_, v)| !v.is_empty()) {
            req = req.item(k, AttributeValue::Ss(v.into_iter().collect()));
        }
        if let Some((expr, values)) = expression(cond, self.now()) {
            req = req.condition_expression(expr);
            for (k, v) in names(expr) {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
        }
        match req.send().await {
            Ok(_) => Ok(Put::Written),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Put::Refused(c.item().map(to_item)))
                }
                _ => Err(failed(e)),
            },
        }
    }

    async fn delete(&self, key: &str, cond: Cond) -> Written {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()));
        if let Some((expr, values)) = expression(cond, self.now()) {
            req = req.condition_expression(expr);
            for (k, v) in names(expr) {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn update(
        &self,
        key: &str,
        update: Update,
        cond: Cond,
    ) -> Result<Option<Item>, LedgerError> {
        use aws_sdk_dynamodb::types::ReturnValue;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .return_values(ReturnValue::AllNew);
        // Attribute names go through placeholders: a field's name is data (a source's digest).
        let (mut sets, mut adds) = (Vec::new(), Vec::new());
        let mut i = 0;
        let mut name =
            |req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
             attr: &str,
             v: AttributeValue| {
                i += 1;
                let req = req
                    .expression_attribute_names(format!("#u{i}"), attr)
                    .expression_attribute_values(format!(":u{i}"), v);
                (req, i)
            };
        for (k, v) in &update.set.s {
            let (r, i) = name(req, k, AttributeValue::S(v.clone()));
            req = r;
            sets.push(format!("#u{i} = :u{i}"));
        }
        for (k, v) in &update.set.n {
            let (r, i) = name(req, k, AttributeValue::N(v.to_string()));
            req = r;
            sets.push(format!("#u{i} = :u{i}"));
        }
        for (k, v) in &update.add {
            let (r, i) = name(req, k, AttributeValue::N(v.to_string()));
            req = r;
            adds.push(format!("#u{i} :u{i}"));
        }
        for (k, v) in update.add_set.iter().filter(|(_, v)| !v.is_empty()) {
            let (r, i) = name(req, k, AttributeValue::Ss(v.iter().cloned().collect()));
            req = r;
            adds.push(format!("#u{i} :u{i}"));
        }
        let mut expr = String::new();
        if !sets.is_empty() {
            expr.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !adds.is_empty() {
            expr.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        req = req.update_expression(expr.trim());
        let mut conditions = Vec::new();
        if let Some((e, values)) = expression(cond, self.now()) {
            conditions.push(format!("({e})"));
            for (k, v) in names(e) {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
        }
        if let Some((attr, v)) = &update.guard {
            conditions.push("(attribute_not_exists(#guard) OR #guard < :guard)".to_owned());
            req = req
                .expression_attribute_names("#guard", attr)
                .expression_attribute_values(":guard", AttributeValue::N(v.to_string()));
        }
        if !conditions.is_empty() {
            req = req.condition_expression(conditions.join(" AND "));
        }
        match req.send().await {
            Ok(out) => Ok(Some(out.attributes().map(to_item).unwrap_or_default())),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    async fn set_member(
        &self,
        key: &str,
        attr: &str,
        value: &str,
        present: bool,
    ) -> Result<(), LedgerError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression(if present {
                "ADD #set :v"
            } else {
                "DELETE #set :v"
            })
            .expression_attribute_names("#set", attr)
            .expression_attribute_values(":v", AttributeValue::Ss(vec![value.to_owned()]))
            .send()
            .await
            .map(|_| ())
            .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_names_only_what_it_uses() {
        for cond in [
            Cond::Free,
            Cond::FreeOrSending,
            Cond::Sending,
            Cond::LeaseLapsed,
            Cond::Holds(7),
            Cond::NotNewer(7),
            Cond::NotOpen,
            Cond::OpenVersion(7),
            Cond::OpenAt(7, 3),
        ] {
            let (expr, values) = expression(cond, 100).unwrap();
            for (k, _) in &values {
                assert!(expr.contains(k), "{cond:?}: {k} unused in {expr}");
            }
            assert!(!names(expr).is_empty(), "{cond:?}");
        }
        assert!(expression(Cond::Always, 1).is_none());
    }
}
