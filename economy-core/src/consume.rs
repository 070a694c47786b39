//! The consume operation.

use crate::{Env, ItemType, RuleError};

/// Uses up `quantity` of a consumable item; returns the quantity left.
pub fn consume(env: &mut impl Env, item_id: &str, quantity: u64) -> Result<u64, RuleError> {
    if quantity == 0 {
        return Err(RuleError::Invalid("quantity must be at least 1".into()));
    }
    let item = env.item_by_id(item_id).ok_or_else(|| RuleError::NotFound("item".into()))?;
    if item.item_type != ItemType::Consumable {
        return Err(RuleError::NotConsumable);
    }
    Ok(env.consume(&item.id, quantity)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeEnv;

    #[test]
    fn consuming_decrements_and_refuses_more_than_held() {
        let mut env = FakeEnv::new().with_item("potion", ItemType::Consumable, 1);
        env.hold("id-potion", 3);
        assert_eq!(consume(&mut env, "id-potion", 2), Ok(1));
        assert_eq!(consume(&mut env, "id-potion", 2), Err(RuleError::InsufficientQuantity));
        assert_eq!(env.quantity("id-potion"), 1);
    }

    #[test]
    fn only_consumables_are_consumed() {
        let mut env = FakeEnv::new().with_item("sword", ItemType::Durable, 1);
        env.hold("id-sword", 1);
        assert_eq!(consume(&mut env, "id-sword", 1), Err(RuleError::NotConsumable));
        assert_eq!(consume(&mut env, "id-ghost", 1), Err(RuleError::NotFound("item".into())));
        assert!(matches!(consume(&mut env, "id-sword", 0), Err(RuleError::Invalid(_))));
    }
}
