//! Bulk import of products by SKU (create, update or leave unchanged), and the
//! `product.changed` events every product write announces itself with.

use std::collections::HashSet;

use souk_db::catalog::{self, ProductRow};
use souk_db::clock::now_micros;
use souk_db::DbError;

use crate::catalog::model::parse_sku;
use crate::catalog::products::{refuse_skus_in_use, sku_taken, ValidProduct};
use crate::catalog::service::CatalogService;
use crate::catalog::views::{ImportError, ImportReport, ProductInput};
use crate::error::{Error, FieldError};
use crate::outbox::Topic;

impl CatalogService {
    /// Creates or updates each valid row by SKU; bad rows are reported with their line
    /// and skipped. Running the same import twice changes nothing the second time.
    #[tracing::instrument(name = "import_products", skip_all, fields(rows = rows.len()))]
    pub async fn import(
        &self,
        rows: Vec<(usize, Result<ProductInput, Vec<FieldError>>)>,
    ) -> Result<ImportReport, Error> {
        let categories = self.categories().await?;
        let mut report = ImportReport::default();
        let mut seen = HashSet::new();
        let mut written = Vec::new();
        for (line, parsed) in rows {
            let input = match parsed {
                Ok(input) => input,
                Err(errors) => {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku: None,
                        errors,
                    });
                    continue;
                }
            };
            let sku = parse_sku(&input.sku).ok();
            if let Some(sku) = &sku {
                if !seen.insert(sku.clone()) {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku: Some(sku.clone()),
                        errors: vec![FieldError::new("sku", "appears earlier in this import")],
                    });
                    continue;
                }
            }
            let valid = match self.validate(&input, &categories).await {
                Ok(valid) => valid,
                Err(errors) => {
                    report.failed += 1;
                    report.errors.push(ImportError { line, sku, errors });
                    continue;
                }
            };
            match self.upsert(valid).await {
                // Each written row's event reaches the other nodes at once: the shared
                // cache must not answer them what it held before for the rest of the
                // import.
                Ok(Upserted::Created(id)) => {
                    report.created += 1;
                    written.push(id);
                    self.invalidate().await;
                }
                Ok(Upserted::Updated(id)) => {
                    report.updated += 1;
                    written.push(id);
                    self.invalidate().await;
                }
                Ok(Upserted::Unchanged) => report.unchanged += 1,
                Err(error) => {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku,
                        errors: vec![FieldError::new("body", error.detail())],
                    });
                }
            }
        }
        if report.created + report.updated > 0 {
            self.reindex(&written).await;
        }
        tracing::info!(
            created = report.created,
            updated = report.updated,
            failed = report.failed,
            "import finished"
        );
        Ok(report)
    }

    async fn upsert(&self, valid: ValidProduct) -> Result<Upserted, Error> {
        let mut transaction = self.db.begin().await?;
        // By the product's own SKU: a row naming a variant's SKU is another product,
        // refused below as a SKU in use.
        let existing = catalog::find_product_by_sku(&mut transaction, &valid.sku)
            .await?
            .filter(|current| current.product.sku == valid.sku);
        let (outcome, id) = match existing {
            None => {
                let row = Self::row_from(valid, souk_db::ids::new_id(), now_micros());
                refuse_skus_in_use(&mut transaction, &row).await?;
                catalog::insert_product(&mut transaction, &row)
                    .await
                    .map_err(sku_taken)?;
                (Upserted::Created(row.product.id.clone()), row.product.id)
            }
            Some(current) => {
                let row = Self::row_from(
                    valid,
                    current.product.id.clone(),
                    current.product.created_at,
                );
                if same_content(&current, &row) {
                    return Ok(Upserted::Unchanged);
                }
                refuse_skus_in_use(&mut transaction, &row).await?;
                // An import row replaces the whole product: the last one written stands.
                catalog::update_product(&mut transaction, &row, None)
                    .await
                    .map_err(sku_taken)?;
                (Upserted::Updated(row.product.id.clone()), row.product.id)
            }
        };
        announce_products(&mut transaction, std::slice::from_ref(&id)).await?;
        transaction.commit().await.map_err(DbError::from)?;
        Ok(outcome)
    }
}

enum Upserted {
    Created(String),
    Updated(String),
    Unchanged,
}

/// Product ids per `product.changed` event: 200 ids of 36 characters stay well inside
/// an outbox payload's bound.
const IDS_PER_EVENT: usize = 200;

/// Writes the `product.changed` events of these products in the transaction that
/// changes them: how every node's search index learns of the change.
pub async fn announce_products(
    connection: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<(), Error> {
    for chunk in ids.chunks(IDS_PER_EVENT) {
        let event = Topic::ProductChanged.event(&chunk[0], &serde_json::json!({ "ids": chunk }))?;
        souk_db::outbox::append(&mut *connection, &event).await?;
    }
    Ok(())
}

/// Whether an import row would change nothing. Side rows are compared sorted the same
/// way on both sides: the database returns them in its collation's order.
fn same_content(current: &ProductRow, candidate: &ProductRow) -> bool {
    let mut left = current.clone();
    let mut right = candidate.clone();
    for row in [&mut left, &mut right] {
        row.tags.sort();
        row.attributes.sort();
    }
    left.product.updated_at = 0;
    right.product.updated_at = 0;
    left == right
}
